"""The example HAL driver: one device with memory and a queue of its own.

What makes it an accelerator rather than the host CPU, from hal's point of view:

* **Device memory.** Buffers live in the device's memory heap (``DEVICE_LOCAL``, not
  ``HOST_VISIBLE``): ``Buffer.map()`` is refused, the allocator cannot wrap host arrays, and
  data moves only through ``queue_write`` / ``queue_read`` (or ``Allocator.import_host``, a
  blocking upload), each a real copy, ordered by semaphores like any other queue operation.
  (The "memory" is numpy arrays that only the device touches, standing in for a DMA-able heap.)
* **A queue.** Queue operations run on the device's own thread, in the order their waits are
  reached; the host never runs device work. A submission whose waits are not reached is
  parked on them, so work waiting for a later host signal never blocks other submissions.
* **Its own executables.** The device prepares ``example-program`` payloads only
  (:mod:`hal_example.executable`).

Device URIs: ``example://`` (or ``example://0``) with optional parameters ``memory=BYTES``
(the heap size, default 4 GiB) and ``float64=0`` (a device without float64 arithmetic: variants
that need the ``example:float64`` feature are not chosen).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from hal_core.errors import HalRuntimeError, UsageError
from hal_core.hal.allocator import Allocator, BufferUsage, MemoryHeap, MemoryType
from hal_core.hal.buffer import Buffer, host_bytes, writable_host_bytes
from hal_core.hal.device import Device
from hal_core.hal.driver import DeviceInfo, Driver, parse_device_uri
from hal_core.hal.fence import FenceLike, as_timepoints
from hal_core.hal.requirements import parse_requirement
from hal_core.hal.semaphore import Semaphore, wrap_failure
from hal_example import NAME
from hal_example.command_buffer import ExampleCommandBuffer
from hal_example.executable import ExampleExecutableCache
from hal_example.target import FLOAT64_FEATURE

log = logging.getLogger(__name__)

Timepoints = tuple[tuple[Semaphore, int], ...]

#: The only memory the device has: device-local, invisible to the host.
DEVICE_MEMORY = MemoryType.DEVICE_LOCAL
DEFAULT_MEMORY_BYTES = 4 << 30


def probe() -> str | None:
    """Whether the driver can run here (a real driver would look for its kernel module)."""
    try:
        import numpy  # noqa: F401
    except ImportError:
        return "numpy is not installed; pip install numpy"
    return None


class ExampleAllocator(Allocator):
    """Allocates from the device's memory heap; the host cannot see or wrap it."""

    can_wrap_host = False
    #: What a buffer is when the caller does not say (the runtime, the CTS).
    default_memory_type = DEVICE_MEMORY
    default_usage = BufferUsage.TRANSFER | BufferUsage.DISPATCH_STORAGE

    def __init__(self, device_id: str, capacity: int) -> None:
        super().__init__(device_id, max_allocation_size=capacity)
        self._heaps = (MemoryHeap(DEVICE_MEMORY, self.default_usage, capacity),)
        self.capacity = capacity

    def allocate_buffer(self, size: int, memory_type: MemoryType | None = None,
                        usage: BufferUsage | None = None) -> Buffer:
        memory_type = self.default_memory_type if memory_type is None else memory_type
        usage = self.default_usage if usage is None else usage
        if isinstance(size, int) and size > self.capacity - (self.bytes_allocated -
                                                              self.bytes_freed):
            live = self.bytes_allocated - self.bytes_freed
            raise HalRuntimeError(
                f"device {self.device_id} is out of memory: {size} bytes asked, {live} of "
                f"{self.capacity} in use; release buffers or create the device with a larger "
                f"memory= parameter")
        return super().allocate_buffer(size, memory_type, usage)

    def wrap_host(self, array: Any, usage: BufferUsage = BufferUsage.DEFAULT) -> Buffer:
        raise UsageError(f"device {self.device_id} cannot use host memory in place (its memory "
                         f"is not host visible); allocate a buffer and queue_write into it")


class ExampleDevice(Device):
    command_buffer_class = ExampleCommandBuffer

    def __init__(self, driver: ExampleDriver, device_id: str, memory: int, float64: bool) -> None:
        super().__init__(driver, device_id, ExampleAllocator(device_id, memory),
                         ExampleExecutableCache(device_id))
        self.float64 = float64
        self._ready: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Condition()
        self._outstanding = 0        # submitted and not yet finished (parked or ready)
        self._parked: set[_Work] = set()
        self._thread = threading.Thread(target=self._serve, name=f"{device_id} queue",
                                        daemon=True)
        self._thread.start()

    # -- queries -------------------------------------------------------------------------------

    def properties(self) -> dict[str, Any]:
        return {"memory_bytes": self.allocator.capacity, "float64": self.float64}

    def query_features(self) -> frozenset[str]:
        return frozenset({FLOAT64_FEATURE} if self.float64 else ())

    def check_variant(self, variant: Any) -> str | None:
        """None when this device can run ``variant``, else a one-line reason.

        Requirements are parsed with hal's vocabulary (``namespace:name[op value]``); this
        device knows one namespace, its own, and refuses every other, so a variant never runs
        where nobody understood what it needs.
        """
        for text in variant.features:
            try:
                req = parse_requirement(text)
            except UsageError as e:
                return str(e)
            if req.namespace != NAME or req.name != "float64" or req.op:
                return f"needs {text}, which {NAME} devices do not know"
            if not self.float64:
                return f"needs {text}, which {self.id} lacks (created with float64=0)"
        return None

    # -- the queue -----------------------------------------------------------------------------

    def _serve(self) -> None:
        while True:
            work = self._ready.get()
            if work is None:
                return
            work.run()
            with self._lock:
                self._outstanding -= 1
                self._lock.notify_all()

    def _submit(self, wait: FenceLike, signal: FenceLike, fn: Callable[[], None] | None,
                what: str) -> None:
        """Queue ``fn`` to run on the device thread once ``wait`` is reached, then ``signal``."""
        waits, signals = as_timepoints(wait, "wait"), as_timepoints(signal, "signal")
        work = _Work(signals, fn, what)
        with self._lock:
            self._check_open(what)
            self._outstanding += 1
            self._parked.add(work)
            work.pending = len(waits) + 1  # + 1 until every callback is registered
        for sem, value in waits:
            sem.on_reached(value, work.reached_callback(self))
        self._reached(work, None)

    def _reached(self, work: _Work, error: BaseException | None) -> None:
        with self._lock:
            if work not in self._parked:
                return
            work.pending -= 1
            if error is None and work.pending:
                return
            self._parked.discard(work)
            if error is not None:
                self._outstanding -= 1
                self._lock.notify_all()
        if error is not None:
            work.fail(error)
        else:
            self._ready.put(work)

    # -- queue operations ----------------------------------------------------------------------

    def queue_alloca(self, wait: FenceLike, signal: FenceLike, size: int,
                     memory_type: MemoryType | None = None, usage: BufferUsage | None = None
                     ) -> Buffer:
        self._check_open("queue_alloca")
        buffer = self.allocator.allocate_buffer(size, memory_type, usage)
        self._submit(wait, signal, None, "queue_alloca")
        return buffer

    def queue_dealloca(self, wait: FenceLike, signal: FenceLike, buffer: Buffer) -> None:
        if not isinstance(buffer, Buffer) or buffer.allocator is not self.allocator:
            raise UsageError(f"queue_dealloca expects a buffer of device {self.id}, got "
                             f"{buffer!r}")
        self._submit(wait, signal, buffer.release, "queue_dealloca")

    def queue_execute(self, wait: FenceLike, signal: FenceLike,
                      command_buffers: Sequence[ExampleCommandBuffer],
                      binding_tables: Sequence[Sequence[Any] | None] | None = None) -> None:
        self._check_open("queue_execute")
        if binding_tables is not None and len(binding_tables) != len(command_buffers):
            raise UsageError(f"queue_execute: {len(command_buffers)} command buffers but "
                             f"{len(binding_tables)} binding tables; pass one table (or None) per "
                             f"command buffer")
        work = []
        for i, cb in enumerate(command_buffers):
            if not isinstance(cb, ExampleCommandBuffer) or cb.device is not self:
                raise UsageError(f"queue_execute: command buffer {i} ({cb!r}) was not created "
                                 f"by device {self.id}")
            table = binding_tables[i] if binding_tables is not None else None
            cb.check_submittable(table)
            work.append((cb, cb.bind(table)))
        for cb in command_buffers:
            cb.mark_submitted()

        def execute() -> None:
            for cb, slots in work:
                cb.execute(slots)

        self._submit(wait, signal, execute if work else None, "queue_execute")

    def queue_write(self, wait: FenceLike, signal: FenceLike, data: Any, target: Buffer,
                    target_offset: int = 0) -> None:
        """Copy host bytes into ``target`` (device memory) once ``wait`` is reached.

        ``data`` is captured when this is called, so the caller may reuse it at once.
        """
        src = host_bytes(data, "queue_write").copy()
        dst = self._device_range(target, target_offset, src.size, "queue_write target")
        self._submit(wait, signal, lambda: dst.__setitem__(slice(None), src), "queue_write")

    def queue_read(self, wait: FenceLike, signal: FenceLike, source: Buffer, source_offset: int,
                   target: Any) -> None:
        """Copy ``target.nbytes`` bytes of ``source`` into the writable host buffer ``target``.

        The copy happens on the device's thread; ``target`` must stay alive and untouched until
        ``signal`` is reached.
        """
        dst = writable_host_bytes(target, "queue_read")
        src = self._device_range(source, source_offset, dst.size, "queue_read source")
        self._submit(wait, signal, lambda: dst.__setitem__(slice(None), src), "queue_read")

    def _device_range(self, buffer: Any, offset: int, length: int, what: str) -> Any:
        if not isinstance(buffer, Buffer) or buffer.allocator is not self.allocator:
            raise UsageError(f"{what}: expected a buffer of device {self.id}, got {buffer!r}")
        offset, length = buffer.check_range(offset, length, what)
        return buffer._storage[offset:offset + length]

    def wait_idle(self, timeout: float | None = None) -> None:
        with self._lock:
            if not self._lock.wait_for(lambda: self._outstanding == 0, timeout):
                from hal_core.errors import TimeoutExpiredError

                raise TimeoutExpiredError(f"device {self.id}: {self._outstanding} queue "
                                          f"operations still pending after {timeout} s")

    def close(self) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
            parked, self._parked = list(self._parked), set()
            self._outstanding -= len(parked)
        for work in parked:
            work.fail(HalRuntimeError(f"{work.what} never started: device {self.id} was closed "
                                      f"while it waited on semaphores that were never "
                                      f"signalled; wait for submitted work before close()"))
        self._ready.put(None)
        if threading.current_thread() is not self._thread:
            self._thread.join()


class _Work:
    """One queue operation: ``fn`` (None for pure ordering), then signal ``signals``."""

    __slots__ = ("fn", "pending", "signals", "what")

    def __init__(self, signals: Timepoints, fn: Callable[[], None] | None, what: str) -> None:
        self.signals, self.fn, self.what, self.pending = signals, fn, what, 0

    def reached_callback(self, device: ExampleDevice) -> Callable[[BaseException | None], None]:
        return lambda error: device._reached(self, error)

    def run(self) -> None:
        try:
            if self.fn is not None:
                self.fn()
        except Exception as e:  # noqa: BLE001 - every failure must reach the waiters
            self.fail(wrap_failure(e, self.what))
            return
        for sem, value in self.signals:
            try:
                sem.signal(value)
            except UsageError as e:
                sem.fail(HalRuntimeError(f"{self.what}: could not signal {sem!r} to {value}: {e}"))

    def fail(self, error: BaseException) -> None:
        log.debug("%s failed: %s", self.what, error)
        for sem, _ in self.signals:
            sem.fail(error)


class ExampleDriver(Driver):
    name = NAME
    #: CTS features this driver does not have, and why (the CTS skips those tests).
    cts_unsupported: ClassVar[dict[str, str]] = {
        "mapping": "device memory is not host visible: data moves through queue_write and "
                   "queue_read, and map() is refused",
        "local_dispatch_abi": "example devices run example-program executables on their own "
                              "queue, not the local (CPU) dispatch ABI's LocalExecutables",
    }

    def query_available_devices(self) -> list[DeviceInfo]:
        return [DeviceInfo(uri=f"{NAME}://", name=f"{NAME} accelerator 0",
                           properties={"memory_bytes": DEFAULT_MEMORY_BYTES, "float64": True})]

    def create_device(self, uri: str | None = None) -> ExampleDevice:
        path, params = parse_device_uri(uri, NAME) if uri is not None else ("", {})
        if path not in ("", "0"):
            raise UsageError(f"device URI {uri!r}: {NAME} has one device, '{NAME}://'; got "
                             f"device path {path!r}")
        unknown = sorted(set(params) - {"memory", "float64"})
        if unknown:
            raise UsageError(f"device URI {uri!r}: unknown parameter(s) {', '.join(unknown)}; "
                             f"{NAME} accepts memory=BYTES and float64=0|1")
        memory, float64 = params.get("memory", str(DEFAULT_MEMORY_BYTES)), params.get("float64",
                                                                                      "1")
        if not memory.isdigit() or float64 not in ("0", "1"):
            raise UsageError(f"device URI {uri!r}: memory must be a number of bytes and float64 "
                             f"0 or 1, got memory={memory!r} float64={float64!r}")
        return ExampleDevice(self, f"{NAME}://", int(memory), float64 == "1")


def create_driver(registry: Any = None) -> ExampleDriver:
    return ExampleDriver(registry)
