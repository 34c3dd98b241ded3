"""The worker pool of local-task: daemon threads, and a dispatch's tiles spread over them."""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class WorkerPool:
    """Daemon threads taking callables from one queue (None stops a worker), and the
    per-device resources (:meth:`resource`) that executables spread dispatches with."""

    def __init__(self, workers: int, name: str) -> None:
        self.size = workers
        self.name = name
        self._resources: dict[str, Any] = {}
        self._resource_lock = threading.Lock()
        self._shut = False
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

    def resource(self, key: str, factory: Callable[[int], Any]) -> Any:
        """The object ``factory(self.size)`` made on the first call with ``key``, shared by
        later calls; None once the pool is shut down. :meth:`shutdown` calls its ``close()``.

        This is where an executable keeps state that must live as long as the device and no
        longer, such as native helper threads for its ``run_parallel`` (see
        :mod:`hal_core.hal.local.executable`); the core does not know what it holds.
        """
        with self._resource_lock:
            if self._shut:
                return None
            found = self._resources.get(key)
            if found is None:
                found = self._resources[key] = factory(self.size)
            return found

    def shutdown(self, timeout: float = 5.0) -> None:
        with self._resource_lock:
            self._shut = True
            resources, self._resources = list(self._resources.values()), {}
        for r in resources:
            try:
                r.close()
            except Exception:  # one resource must not keep the others open
                log.exception("closing a resource of worker pool %s failed", self.name)
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
