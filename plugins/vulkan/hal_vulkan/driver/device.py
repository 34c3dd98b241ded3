"""The vulkan driver and device: enumeration by UUID, queue operations over one compute queue.

Device URIs: ``vulkan://`` (the default: a discrete GPU first, then integrated, virtual, CPU),
``vulkan://<index>``, ``vulkan://<uuid>`` (as listed; an NVIDIA-style ``GPU-`` prefix is
accepted). Parameter ``sync=timeline|fence`` picks how submissions are tracked (timeline by
default where Vulkan 1.2 timelines exist).

Queue operations wait on hal semaphores on the host: work whose waits are reached is submitted
at once; other work is parked and submitted by whichever thread reaches its last wait. GPU
completion signals the hal semaphores (see :mod:`hal_vulkan.driver.context`).
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from hal_core.errors import HalRuntimeError, UsageError
from hal_core.hal.allocator import BufferUsage, MemoryType
from hal_core.hal.buffer import Buffer, host_bytes
from hal_core.hal.command_buffer import CommandBufferMode
from hal_core.hal.device import Device
from hal_core.hal.driver import DeviceInfo, Driver, parse_device_uri
from hal_core.hal.fence import FenceLike, as_timepoints
from hal_core.hal.semaphore import Semaphore, wrap_failure
from hal_vulkan.driver.command_buffer import VulkanCommandBuffer
from hal_vulkan.driver.context import LogicalDevice
from hal_vulkan.driver.executable import FORMAT, VulkanExecutableCache
from hal_vulkan.driver.instance import Instance
from hal_vulkan.driver.memory import VulkanAllocator, vk_range
from hal_vulkan.driver.requirements import check_requirements, feature_strings

log = logging.getLogger(__name__)

Timepoints = tuple[tuple[Semaphore, int], ...]
_PREFERENCE = {"discrete-gpu": 0, "integrated-gpu": 1, "virtual-gpu": 2, "cpu": 3, "other": 4}


def _signal_all(signals: Timepoints, what: str) -> None:
    for sem, value in signals:
        try:
            sem.signal(value)
        except UsageError as e:
            sem.fail(HalRuntimeError(f"{what}: could not signal {sem!r} to {value}: {e}"))


def _fail_all(signals: Timepoints, error: BaseException) -> None:
    for sem, _ in signals:
        sem.fail(error)


class VulkanDevice(Device):
    """One VkDevice with one compute queue."""

    command_buffer_class = VulkanCommandBuffer

    def __init__(self, driver: VulkanDriver, physical: Any, device_id: str, timeline: bool,
                 device_only: bool = False) -> None:
        self.id = device_id
        self.physical = physical
        self.context = LogicalDevice(physical, timeline)
        super().__init__(driver, device_id, VulkanAllocator(self, self.context, device_only),
                         VulkanExecutableCache(self, self.context))
        self._parked: set[Any] = set()
        self._park_lock = threading.Lock()
        self._command_buffers: weakref.WeakSet[VulkanCommandBuffer] = weakref.WeakSet()
        self.context.on_destroy(self._destroy_command_buffers)

    # -- queries ------------------------------------------------------------------------------

    def properties(self) -> dict[str, Any]:
        return {**self.physical.summary(),
                "sync": "timeline" if self.context.use_timeline else "fence",
                "extensions": list(self.physical.extensions)}

    def query_features(self) -> frozenset[str]:
        return feature_strings(self.physical)

    def check_variant(self, variant: Any) -> str | None:
        """None when this device can run ``variant``, else a one-line reason."""
        fmt = getattr(variant, "format", None)
        if fmt != FORMAT:
            return f"format {fmt!r} is not {FORMAT!r}, the only format vulkan devices prepare"
        reason = check_requirements(getattr(variant, "features", ()), self.physical)
        return None if reason is None else f"{reason} ({self.id})"

    # -- objects ------------------------------------------------------------------------------

    def track(self, command_buffer: VulkanCommandBuffer) -> None:
        self._command_buffers.add(command_buffer)

    def _destroy_command_buffers(self) -> None:
        for cb in list(self._command_buffers):
            cb.destroy()

    # -- scheduling ---------------------------------------------------------------------------

    def _after(self, waits: Timepoints, signals: Timepoints, fn: Callable[[], None] | None,
               what: str) -> None:
        """Run ``fn`` once ``waits`` are reached (None: just signal ``signals`` then).

        ``fn`` signals ``signals`` itself (at GPU completion); if it raises, they fail.
        """

        def launch() -> None:
            if fn is None:
                _signal_all(signals, what)
                return
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - every failure must reach the waiters
                _fail_all(signals, wrap_failure(e, what))

        pending = [sem for sem, value in waits if sem._value < value or sem._failure is not None]
        if not pending:
            launch()
            return
        state = {"left": len(waits), "done": False}
        with self._park_lock:
            if self.closed:
                state["done"] = True
            else:
                self._parked.add((id(state), signals, what))
        if state["done"]:
            _fail_all(signals, self._never_started(what))
            return
        key = (id(state), signals, what)

        def on_reached(error: BaseException | None) -> None:
            with self._park_lock:
                if state["done"]:
                    return
                if error is None:
                    state["left"] -= 1
                    if state["left"]:
                        return
                state["done"] = True
                self._parked.discard(key)
            if error is not None:
                _fail_all(signals, error)
            else:
                launch()

        for sem, value in waits:
            sem.on_reached(value, on_reached)

    def _never_started(self, what: str) -> HalRuntimeError:
        return HalRuntimeError(f"{what} never started: device {self.id} was closed while it "
                               f"waited on semaphores that were never signalled")

    def _launch(self, work: list[tuple[VulkanCommandBuffer, tuple]], signals: Timepoints,
                what: str, then: Callable[[], None] | None = None) -> None:
        """Submit recorded command buffers; signal (after ``then``) when the GPU is done."""
        acquired = []
        try:
            for cb, slots in work:
                acquired.append((cb, cb.acquire(slots)))
        except BaseException:
            for cb, inst in acquired:
                cb.release_instance(inst)
            raise
        ctx = self.context

        def complete(error: BaseException | None) -> None:
            for cb, inst in acquired:
                cb.release_instance(inst)
            if error is None and then is not None:
                try:
                    then()
                except Exception as e:  # noqa: BLE001
                    error = wrap_failure(e, what)
            if error is None:
                failures = ctx.validation_failures()
                if failures:
                    error = HalRuntimeError(f"{what}: the Vulkan validation layer reported "
                                            f"{len(failures)} error(s), first: {failures[0]}")
            if error is not None:
                _fail_all(signals, wrap_failure(error, what))
            else:
                _signal_all(signals, what)

        try:
            pending = ctx.submit([inst.cb for _, inst in acquired], complete, work)
        except BaseException:
            for cb, inst in acquired:
                cb.release_instance(inst)
            raise
        runner = pending.run_on_host
        for sem, value in signals:
            sem.offer(value, runner)

    # -- queue operations ---------------------------------------------------------------------

    def queue_alloca(self, wait: FenceLike, signal: FenceLike, size: int,
                     memory_type: MemoryType | None = None, usage: BufferUsage | None = None
                     ) -> Buffer:
        self._check_open("queue_alloca")
        waits, signals = as_timepoints(wait, "wait"), as_timepoints(signal, "signal")
        buffer = self.allocator.allocate_buffer(size, memory_type, usage)
        self._after(waits, signals, None, "queue_alloca")
        return buffer

    def queue_dealloca(self, wait: FenceLike, signal: FenceLike, buffer: Buffer) -> None:
        self._check_open("queue_dealloca")
        if not isinstance(buffer, Buffer):
            raise UsageError(f"queue_dealloca expects a Buffer, got {type(buffer).__name__}")
        waits, signals = as_timepoints(wait, "wait"), as_timepoints(signal, "signal")

        def release() -> None:
            buffer.release()
            _signal_all(signals, "queue_dealloca")

        self._after(waits, signals, release, "queue_dealloca")

    def queue_execute(self, wait: FenceLike, signal: FenceLike,
                      command_buffers: Sequence[VulkanCommandBuffer],
                      binding_tables: Sequence[Sequence[Any] | None] | None = None) -> None:
        self._check_open("queue_execute")
        waits, signals = as_timepoints(wait, "wait"), as_timepoints(signal, "signal")
        if binding_tables is not None and len(binding_tables) != len(command_buffers):
            raise UsageError(
                f"queue_execute: {len(command_buffers)} command buffers but "
                f"{len(binding_tables)} binding tables; pass one table (or None) per buffer")
        work = []
        for i, cb in enumerate(command_buffers):
            if not isinstance(cb, VulkanCommandBuffer) or cb.device is not self:
                raise UsageError(f"queue_execute: command buffer {i} ({cb!r}) was not created "
                                 f"by device {self.id}")
            table = binding_tables[i] if binding_tables is not None else None
            cb.check_submittable(table)
            work.append((cb, cb.bind(table)))
        for cb in command_buffers:
            cb.mark_submitted()
        if not work:
            self._after(waits, signals, None, "queue_execute")
            return
        self._after(waits, signals, lambda: self._launch(work, signals, "queue_execute"),
                    "queue_execute")

    def _own_buffer(self, buffer: Any, what: str) -> None:
        if not isinstance(buffer, Buffer):
            raise UsageError(f"{what}: expected a Buffer, got {type(buffer).__name__}")
        alloc, _ = vk_range(buffer, 0)
        if alloc.context is not self.context:
            raise UsageError(f"{what}: the buffer belongs to another device")

    def queue_write(self, wait: FenceLike, signal: FenceLike, data: Any, target: Buffer,
                    target_offset: int = 0) -> None:
        """Copy host bytes into ``target`` at ``target_offset``; complete at ``signal``."""
        self._check_open("queue_write")
        waits, signals = as_timepoints(wait, "wait"), as_timepoints(signal, "signal")
        self._own_buffer(target, "queue_write")
        src = host_bytes(data, "queue_write")
        target.check_range(target_offset, src.size, "queue_write")
        if target.memory_type & MemoryType.HOST_VISIBLE:
            region = target._storage[target_offset:target_offset + src.size]
            if any(sem._value < value for sem, value in waits):
                src = src.copy()  # the bytes are taken now; the caller may reuse its array

            def write() -> None:
                region[:] = src
                _signal_all(signals, "queue_write")

            self._after(waits, signals, write, "queue_write")
            return
        staging = self.allocator.allocate_buffer(src.size, MemoryType.HOST_VISIBLE, internal=True)
        staging._storage[:] = src  # captured now: the caller may reuse its array at once
        cb = self.create_command_buffer()
        with cb:
            cb.copy(staging, target, 0, target_offset, src.size)
        work = [(cb, cb.bind(None))]
        cb.mark_submitted()
        self._after(waits, signals, lambda: self._launch(work, signals, "queue_write"),
                    "queue_write")

    def queue_read(self, wait: FenceLike, signal: FenceLike, source: Buffer, source_offset: int,
                   target: Any) -> None:
        """Copy ``source`` bytes into the writable host buffer ``target`` (its nbytes)."""
        import numpy as np

        self._check_open("queue_read")
        waits, signals = as_timepoints(wait, "wait"), as_timepoints(signal, "signal")
        self._own_buffer(source, "queue_read")
        try:
            view = memoryview(target)
        except TypeError:
            raise UsageError(f"queue_read: target must be a writable host buffer (numpy array, "
                             f"bytearray, memoryview), got {type(target).__name__}") from None
        if view.readonly:
            raise UsageError("queue_read: target is read-only; pass a writable array")
        dst = np.frombuffer(view.cast("B") if view.c_contiguous else view, dtype=np.uint8) \
            if view.c_contiguous else None
        if dst is None:
            raise UsageError("queue_read: target must be C-contiguous")
        n = dst.size
        source.check_range(source_offset, n, "queue_read")
        mt = source.memory_type
        # Host reads of uncached device memory (a discrete GPU's BAR window) crawl: 30 MB/s
        # measured on an H200 against 6-7 GB/s from cached host memory. Read those through a
        # GPU copy into cached staging memory instead.
        if mt & MemoryType.HOST_VISIBLE and (mt & MemoryType.HOST_CACHED
                                             or not mt & MemoryType.DEVICE_LOCAL
                                             or self.physical.device_type == "cpu"):
            region = source._storage[source_offset:source_offset + n]

            def read() -> None:
                dst[:] = region
                _signal_all(signals, "queue_read")

            self._after(waits, signals, read, "queue_read")
            return
        try:
            staging = self.allocator.allocate_buffer(
                n, MemoryType.HOST_VISIBLE | MemoryType.HOST_CACHED, internal=True)
        except UsageError:  # no cached host memory on this device
            staging = self.allocator.allocate_buffer(n, MemoryType.HOST_VISIBLE, internal=True)
        cb = self.create_command_buffer()
        with cb:
            cb.copy(source, staging, source_offset, 0, n)
        work = [(cb, cb.bind(None))]
        cb.mark_submitted()

        def then() -> None:
            dst[:] = staging._storage

        self._after(waits, signals,
                    lambda: self._launch(work, signals, "queue_read", then), "queue_read")

    # -- synchronous helpers for the allocator ---------------------------------------------------

    def write_now(self, data: Any, buffer: Buffer, offset: int = 0) -> None:
        sem = Semaphore(0)
        self.queue_write((), ((sem, 1),), data, buffer, offset)
        sem.wait(1)

    def zero_device_buffer(self, buffer: Buffer) -> None:
        if not buffer.size:
            return
        cb = self.create_command_buffer()
        with cb:
            cb.fill(buffer, 0)
        sem = Semaphore(0)
        self.queue_execute((), ((sem, 1),), [cb])
        sem.wait(1)

    def wait_idle(self, timeout: float | None = None) -> None:
        from hal_core.errors import TimeoutExpiredError

        if not self.context.wait_idle(timeout):
            raise TimeoutExpiredError(f"device {self.id}: submissions still running after "
                                      f"{timeout} s")

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        with self._park_lock:
            parked, self._parked = list(self._parked), set()
        for _, signals, what in parked:
            _fail_all(signals, self._never_started(what))
        self.context.close()
        failures = self.context.validation_failures()
        if failures:
            raise HalRuntimeError(f"device {self.id}: the Vulkan validation layer reported "
                                  f"{len(failures)} error(s): " + " | ".join(failures[:3]))


class VulkanDriver(Driver):
    name = "vulkan"
    cts_unsupported: ClassVar[dict[str, str]] = {
        "local_dispatch_abi": "the vulkan driver dispatches SPIR-V compute pipelines, not "
                              "LocalExecutable objects of the local dispatch ABI",
        "out_of_bounds_detection": "Vulkan does not check storage-buffer accesses against the "
                                   "bound range (an out-of-range access is undefined, or dropped "
                                   "under robustBufferAccess), so a dispatch reading past a "
                                   "binding cannot be failed",
    }
    params: ClassVar[dict[str, str]] = {
        "sync": "how submissions are tracked: timeline (Vulkan 1.2 timeline semaphore, the "
                "default where available) or fence",
        "memory": "'device-only' offers buffers no host-visible memory (data moves through "
                  "staging copies, as on a discrete GPU); default: what the device has",
    }

    def __init__(self, registry: Any = None) -> None:
        super().__init__(registry)
        self._instance: Instance | None = None
        self._lock = threading.Lock()

    @property
    def instance(self) -> Instance:
        with self._lock:
            if self._instance is None:
                self._instance = Instance()
            return self._instance

    def query_available_devices(self) -> list[DeviceInfo]:
        return [DeviceInfo(uri=p.uri, name=f"{p.name} ({p.device_type}, Vulkan {p.api_text()})",
                           properties=p.summary())
                for p in self.instance.physical_devices]

    def _physical(self, path: str, uri: str) -> Any:
        devices = self.instance.physical_devices
        if not devices:
            raise HalRuntimeError("the Vulkan driver reports no physical devices")
        if path == "":
            return min(devices, key=lambda p: (_PREFERENCE.get(p.device_type, 9), p.index))
        if path.isdigit():
            index = int(path)
            if index >= len(devices):
                raise UsageError(f"device URI {uri!r}: index {index} is out of range; this "
                                 f"machine has {len(devices)} Vulkan device(s): "
                                 f"{', '.join(p.uri for p in devices)}")
            return devices[index]
        wanted = path.lower().removeprefix("gpu-")
        for p in devices:
            if p.uuid and p.uuid.lower() == wanted:
                return p
        raise UsageError(f"device URI {uri!r}: no Vulkan device has UUID {path!r}; devices: "
                         f"{', '.join(f'{p.uri} ({p.name})' for p in devices)}")

    def create_device(self, uri: str | None = None) -> VulkanDevice:
        path, params = ("", {}) if uri is None else parse_device_uri(uri, self.name)
        unknown = sorted(set(params) - set(self.params))
        if unknown:
            accepted = ", ".join(f"{k} ({v})" for k, v in self.params.items())
            raise UsageError(f"device URI {uri!r}: unknown parameter(s) {', '.join(unknown)}; "
                             f"vulkan accepts: {accepted}")
        sync = params.get("sync", "timeline")
        if sync not in ("timeline", "fence"):
            raise UsageError(f"device URI {uri!r}: sync must be 'timeline' or 'fence', "
                             f"got {sync!r}")
        memory = params.get("memory", "")
        if memory not in ("", "device-only"):
            raise UsageError(f"device URI {uri!r}: memory must be 'device-only' (or absent), "
                             f"got {memory!r}")
        physical = self._physical(path, uri or "vulkan://")
        query = "&".join(p for p in ("sync=fence" if sync == "fence" else "",
                                     f"memory={memory}" if memory else "") if p)
        device_id = physical.uri + (f"?{query}" if query else "")
        return VulkanDevice(self, physical, device_id, timeline=sync == "timeline",
                            device_only=bool(memory))


def create_driver(registry: Any = None) -> VulkanDriver:
    return VulkanDriver(registry)


# Keep CommandBufferMode importable from here for callers recording reusable buffers.
__all__ = ["CommandBufferMode", "VulkanDevice", "VulkanDriver", "create_driver"]
