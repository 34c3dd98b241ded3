"""Fences: a list of (semaphore, value) timepoints, all of which must be reached."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

from hal_core.errors import UsageError
from hal_core.hal.semaphore import Semaphore, _check_value


class Fence:
    """A set of timepoints. Queue operations take fences for their waits and signals."""

    __slots__ = ("timepoints",)

    def __init__(self, timepoints: Iterable[tuple[Semaphore, int]] = ()) -> None:
        tps = tuple(timepoints)
        for tp in tps:
            _check_timepoint(tp)
        self.timepoints = tps

    @classmethod
    def at(cls, semaphore: Semaphore, value: int) -> Fence:
        return cls(((semaphore, value),))

    def __iter__(self) -> Iterator[tuple[Semaphore, int]]:
        return iter(self.timepoints)

    def __len__(self) -> int:
        return len(self.timepoints)

    def __repr__(self) -> str:
        return f"Fence({list(self.timepoints)!r})"

    def insert(self, semaphore: Semaphore, value: int) -> None:
        """Add a timepoint (keeping the larger value when the semaphore is already present)."""
        _check_timepoint((semaphore, value))
        tps = list(self.timepoints)
        for i, (sem, v) in enumerate(tps):
            if sem is semaphore:
                tps[i] = (sem, max(v, value))
                break
        else:
            tps.append((semaphore, value))
        self.timepoints = tuple(tps)

    def is_reached(self) -> bool:
        """True when every timepoint is reached; raises a semaphore's failure."""
        return all(sem.query() >= value for sem, value in self.timepoints)

    def wait(self, timeout: float | None = None) -> None:
        """Wait for every timepoint (TimeoutExpiredError after ``timeout`` seconds in all)."""
        if timeout is None:
            for sem, value in self.timepoints:
                sem.wait(value)
            return
        deadline = time.monotonic() + timeout
        for sem, value in self.timepoints:
            sem.wait(value, max(0.0, deadline - time.monotonic()))

    def signal(self) -> None:
        """Signal every timepoint from the host."""
        for sem, value in self.timepoints:
            sem.signal(value)

    def fail(self, error: BaseException) -> None:
        for sem, _ in self.timepoints:
            sem.fail(error)


def _check_timepoint(tp: object) -> None:
    if (
        not isinstance(tp, tuple)
        or len(tp) != 2
        or not isinstance(tp[0], Semaphore)
        or not isinstance(tp[1], int)
    ):
        raise UsageError(f"a fence timepoint is a (Semaphore, int) pair, got {tp!r}")
    # Checked here, not when a queue reaches it: a value no signal can reach would park the
    # work forever, and one no signal may set would fail only at execution.
    _check_value(tp[1], "fence timepoint value")


FenceLike = Fence | Iterable[tuple[Semaphore, int]] | None


def as_timepoints(fence: FenceLike, what: str) -> tuple[tuple[Semaphore, int], ...]:
    """Normalise a queue operation's wait/signal argument to a tuple of timepoints."""
    if fence is None:
        return ()
    if isinstance(fence, Fence):
        return fence.timepoints
    if isinstance(fence, tuple) and len(fence) == 2 and isinstance(fence[0], Semaphore):
        raise UsageError(
            f"{what} must be a Fence or a list of (semaphore, value) pairs, got a single pair "
            f"{fence!r}; wrap it in a list"
        )
    try:
        return Fence(fence).timepoints
    except TypeError:
        raise UsageError(
            f"{what} must be a Fence or a list of (semaphore, value) pairs, got {fence!r}"
        ) from None
