"""The worker pool of local-task: daemon threads, and a dispatch's tiles spread over them."""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections.abc import Callable

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
