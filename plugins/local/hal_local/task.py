"""local-task: a pool of worker threads runs submissions and spreads dispatches over cores.

``queue_execute`` returns at once. A submission runs on one worker; each dispatch in it is
cut into one contiguous tile of workgroup ids per worker, and the submitting worker claims
tiles along with its helpers, so it never waits for a tile nobody has started (no deadlock
however many submissions are in flight) and each tile is one ``run`` call.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, ClassVar

from hal_core.errors import UsageError
from hal_local.device import LocalDevice, LocalDriver, Submission

log = logging.getLogger(__name__)


class WorkerPool:
    """Daemon threads taking callables from one queue (None stops a worker)."""

    def __init__(self, workers: int, name: str) -> None:
        self.size = workers
        self._queue: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._loop, name=f"{name}-worker-{i}", daemon=True)
            for i in range(workers)
        ]
        for t in self._threads:
            t.start()

    def _loop(self) -> None:
        get = self._queue.get
        while True:
            task = get()
            if task is None:
                return
            try:
                task()
            except BaseException:
                log.exception("local-task worker task raised")
            # Drop it before blocking in get(): the finished task's closure holds the
            # dispatch's bindings (the caller's inputs and results) alive until the next one.
            task = None

    def put(self, task: Callable[[], None]) -> None:
        self._queue.put(task)

    def shutdown(self, timeout: float = 5.0) -> None:
        for _ in self._threads:
            self._queue.put(None)
        me = threading.current_thread()
        for t in self._threads:
            if t is not me:
                t.join(timeout)

    def parallel_tiles(self, tiles: int, run_tile: Callable[[int], None]) -> None:
        """Run ``run_tile(i)`` for i in range(tiles) on this thread and helpers; re-raise."""
        claim = itertools.count().__next__  # atomic under the GIL
        lock = threading.Lock()
        finished = threading.Event()
        state = {"left": tiles}
        errors: list[BaseException] = []

        def work() -> None:
            while True:
                i = claim()
                if i >= tiles:
                    return
                try:
                    run_tile(i)
                except BaseException as e:  # noqa: BLE001 - re-raised by the submitter
                    errors.append(e)
                with lock:
                    state["left"] -= 1
                    if not state["left"]:
                        finished.set()

        for _ in range(tiles - 1):
            self._queue.put(work)
        work()
        finished.wait()
        if errors:
            raise errors[0]


class TaskDevice(LocalDevice):
    def __init__(self, driver: LocalDriver, device_id: str, workers: int) -> None:
        super().__init__(driver, device_id, workers)
        self.pool = WorkerPool(workers, "local-task")
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


class TaskDriver(LocalDriver):
    name = "local-task"
    device_class = TaskDevice
    params: ClassVar[dict[str, str]] = {
        "workers": "number of worker threads, an int >= 1 (default: usable cores)"
    }

    def create_device(self, uri: str | None = None) -> TaskDevice:
        uri, params = self._parse(uri)
        workers = self.default_workers()
        device_id = f"{self.name}://"
        if "workers" in params:
            text = params["workers"]
            if not text.isdigit() or int(text) < 1:
                raise UsageError(f"device URI {uri!r}: workers must be an int >= 1, got {text!r}")
            workers = int(text)
            device_id = f"{self.name}://?workers={workers}"
        return TaskDevice(self, device_id, workers)


def create_driver(registry: Any) -> TaskDriver:
    return TaskDriver(registry)
