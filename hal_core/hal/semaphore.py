"""Timeline semaphores: a monotonically increasing uint64 value, or a failure.

A semaphore is the only synchronisation between the host and queues. Waiters block on a
:class:`threading.Condition`, but the common cases stay cheap: a wait on a value already
reached returns without taking the lock, and ``signal`` notifies only when someone waits.

Drivers schedule work without blocking a thread through :meth:`Semaphore.on_reached`: the
callback runs (on the signalling thread) once the value is reached or the semaphore fails.

A driver that queues work for worker threads may :meth:`Semaphore.offer` it: a host ``wait``
without a timeout then runs that work itself instead of sleeping until a worker has woken,
run it and woken the host again (IREE's local-task donates the waiting thread the same way).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from hal_core.errors import HalRuntimeError, TimeoutExpiredError, UsageError

log = logging.getLogger(__name__)

MAX_VALUE = (1 << 64) - 1

#: Callback given to :meth:`Semaphore.on_reached`: called with None when the value is
#: reached, or with the failure when the semaphore fails.
TimepointCallback = Callable[[BaseException | None], None]


def _check_value(value: int, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_VALUE:
        raise UsageError(f"semaphore {what} must be an int in [0, 2**64), got {value!r}")
    return value


class Semaphore:
    """A timeline semaphore (uint64 value). Thread safe."""

    __slots__ = ("_cond", "_failure", "_runner", "_timepoints", "_value", "_waiters", "label")

    def __init__(self, initial: int = 0, label: str = "") -> None:
        self._value = _check_value(initial, "initial value")
        self._failure: BaseException | None = None
        self._cond = threading.Condition(threading.Lock())
        self._waiters = 0
        self._timepoints: list[tuple[int, TimepointCallback]] = []
        self._runner: tuple[int, Callable[[], None]] | None = None
        self.label = label

    def __repr__(self) -> str:
        state = f"failed: {self._failure}" if self._failure is not None else str(self._value)
        return f"<Semaphore {self.label or hex(id(self))} {state}>"

    @property
    def failure(self) -> BaseException | None:
        """The error the semaphore failed with, or None."""
        return self._failure

    def query(self) -> int:
        """The current value; raises the failure if the semaphore failed."""
        if self._failure is not None:
            raise self._failure
        return self._value

    def signal(self, value: int) -> None:
        """Advance the value to ``value`` (must not go backwards) and wake what it satisfies."""
        if type(value) is not int:
            _check_value(value, "value")
        with self._cond:
            if self._failure is not None:
                # A failed semaphore stays failed: late signals of other work are dropped.
                return
            if value <= self._value:
                if value == self._value:
                    return
                raise UsageError(
                    f"semaphore values only increase: current value {self._value}, asked to "
                    f"signal {value}; signal a value greater than the current one"
                )
            if value > MAX_VALUE:
                _check_value(value, "value")
            self._value = value
            ready = None
            if self._timepoints:
                ready = [cb for v, cb in self._timepoints if v <= value]
                if ready:
                    self._timepoints = [(v, cb) for v, cb in self._timepoints if v > value]
            if self._waiters:
                self._cond.notify_all()
        if ready:
            _notify(ready, None)

    def fail(self, error: BaseException) -> None:
        """Fail the semaphore: every current and future waiter gets ``error``."""
        if not isinstance(error, BaseException):
            raise UsageError(f"Semaphore.fail expects an exception, got {error!r}")
        with self._cond:
            if self._failure is not None:
                return
            self._failure = error
            ready = [cb for _, cb in self._timepoints]
            self._timepoints = []
            self._cond.notify_all()
        _notify(ready, error)

    def wait(self, value: int, timeout: float | None = None) -> None:
        """Block until the value is >= ``value``.

        ``timeout`` in seconds (None waits forever, 0 only polls). Raises
        TimeoutExpiredError when it runs out, and the semaphore's failure if it fails.
        """
        try:
            if self._value >= value and self._failure is None:
                return
        except TypeError:  # not a number: _check_value says what was expected
            pass
        _check_value(value, "wait value")
        runner = self._runner
        # Only an unbounded wait runs queued work: a bounded one must not block in a kernel.
        if runner is not None and timeout is None and runner[0] >= value:
            self._runner = None
            runner[1]()
            if self._value >= value and self._failure is None:
                return
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._waiters += 1
            try:
                while self._failure is None and self._value < value:
                    if deadline is None:
                        self._cond.wait()
                        continue
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutExpiredError(
                            f"semaphore {self.label or hex(id(self))} did not reach {value} "
                            f"within {timeout} s (current value {self._value}); check that "
                            f"some submission or the host signals it"
                        )
                    self._cond.wait(remaining)
            finally:
                self._waiters -= 1
        if self._failure is not None:
            raise self._failure

    def offer(self, value: int, run: Callable[[], None]) -> None:
        """Let a host wait for ``value`` or less call ``run`` instead of sleeping.

        ``run`` is queued work that signals ``value``; it must be safe to call from any thread,
        more than once (only the first call may do the work) and must never raise. The latest
        offer replaces an earlier one: an offer is only a shortcut, the work runs either way.
        """
        self._runner = (value, run)

    def withdraw(self, run: Callable[[], None]) -> None:
        """Drop the offer of ``run`` (finished work), so the semaphore stops referencing it."""
        runner = self._runner
        if runner is not None and runner[1] is run:
            self._runner = None

    def on_reached(self, value: int, callback: TimepointCallback) -> None:
        """Call ``callback(None)`` once the value is >= ``value``, or ``callback(error)``.

        Runs the callback immediately (on this thread) if that already holds.
        """
        with self._cond:
            failure = self._failure
            reached = self._value >= value
            if failure is None and not reached:
                self._timepoints.append((value, callback))
                return
        callback(failure)


def _notify(callbacks: list[TimepointCallback], error: BaseException | None) -> None:
    # One raising callback must not keep the others (other queues' work) from running.
    for cb in callbacks:
        try:
            cb(error)
        except Exception:
            log.exception("semaphore timepoint callback %r raised", cb)


def wrap_failure(error: BaseException, what: str) -> HalRuntimeError:
    """The error a semaphore is failed with when ``what`` raised ``error``.

    HalRuntimeErrors pass through unchanged, so waiters see the original error; anything else
    is wrapped with the command that raised it and chained to the original.
    """
    if isinstance(error, HalRuntimeError):
        return error
    wrapped = HalRuntimeError(f"{what} failed: {type(error).__name__}: {error}")
    wrapped.__cause__ = error
    return wrapped
