"""A local device on a worker pool (what local-task is).

``queue_execute`` returns at once. A submission runs on one worker; each dispatch in it is
cut into one contiguous tile of workgroup ids per worker, and the submitting worker claims
tiles along with its helpers, so it never waits for a tile nobody has started (no deadlock
however many submissions are in flight) and each tile is one ``run`` call. An executable
with a ``run_parallel`` method (native code with its own helper threads, which need no GIL to
wait for work) spreads the dispatch itself instead, given the pool for its size and
per-device resources (see :mod:`hal_core.hal.local.executable`). A host thread that
waits on a submission's signal may run the queued submission itself (``Semaphore.offer``).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from hal_core.hal.local.device import LocalDevice, LocalDriver, Submission
from hal_core.hal.local.worker_pool import WorkerPool

log = logging.getLogger(__name__)


class PooledLocalDevice(LocalDevice):
    """A local device whose submissions run on a worker pool and whose dispatches are split
    into one tile of workgroups per worker (local-task)."""

    pool_name = "local-task"

    def __init__(self, driver: LocalDriver, device_id: str, workers: int) -> None:
        super().__init__(driver, device_id, workers)
        self.pool = WorkerPool(workers, self.pool_name)
        self._idle = threading.Condition()
        self._in_flight = 0
        self._stopped = False  # set (under _idle) once close() stops taking submissions

    def launch(self, sub: Submission) -> None:
        # A worker runs the task, unless a host thread waiting on one of its signals claims
        # it first (Semaphore.offer); whoever loses the claim does nothing.
        claim = threading.Lock().acquire

        def task() -> None:
            if not claim(False):
                return
            try:
                sub.run()
            finally:
                for sem, _ in sub.signals:
                    sem.withdraw(task)
                with self._idle:
                    self._in_flight -= 1
                    if not self._in_flight:
                        self._idle.notify_all()

        with self._idle:
            # Queued under the lock so that it lands before close()'s stop markers, or is
            # refused: a task queued behind them would never run and never signal.
            stopped = self._stopped
            if not stopped:
                self._in_flight += 1
                for sem, value in sub.signals:  # before a worker can finish and withdraw it
                    sem.offer(value, task)
                self.pool.put(task)
        if stopped:
            sub.fail(self._never_started(sub, "it was being submitted"))

    def dispatch_tiles(
        self,
        executable: Any,
        entry: int,
        workgroup_count: tuple[int, int, int],
        total: int,
        bindings: list,
        constants: tuple[int, ...],
    ) -> None:
        tiles = min(self.workers, total)
        if tiles == 1:
            executable.run(entry, workgroup_count, 0, total, bindings, constants)
            return
        run_parallel = getattr(executable, "run_parallel", None)
        if run_parallel is not None:    # the executable spreads the workgroups itself
            run_parallel(entry, workgroup_count, total, bindings, constants, self.pool)
            return
        base, extra = divmod(total, tiles)

        def run_tile(i: int) -> None:
            first = i * base + min(i, extra)
            last = first + base + (1 if i < extra else 0)
            executable.run(entry, workgroup_count, first, last, bindings, constants)

        self.pool.parallel_tiles(tiles, run_tile)

    def wait_idle(self, timeout: float | None = None) -> None:
        from hal_core.errors import TimeoutExpiredError

        with self._idle:
            if not self._idle.wait_for(lambda: not self._in_flight, timeout):
                raise TimeoutExpiredError(
                    f"device {self.id}: {self._in_flight} submissions "
                    f"still running after {timeout} s"
                )

    def close(self) -> None:
        if self.closed:
            return
        super().close()  # fails parked submissions first, so nothing is left to wait for
        try:
            self.wait_idle(timeout=30.0)
        except Exception:  # noqa: BLE001 - a stuck kernel must not hang close; threads are daemons
            log.warning("device %s closed with submissions still running", self.id)
        with self._idle:
            self._stopped = True
        self.pool.shutdown()
