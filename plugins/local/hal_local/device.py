"""The device and driver machinery shared by local-sync and local-task.

A queue operation becomes a :class:`Submission`: a function plus the timepoints to signal.
When its waits are already reached it is launched at once (local-sync runs it inline,
local-task hands it to the pool); otherwise it is parked on the wait semaphores and launched
by whichever thread reaches the last one, so no thread ever blocks waiting for a queue
operation — which is how local-sync avoids deadlocking on a wait only the host will signal.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from hal_core.errors import HalRuntimeError, UsageError
from hal_core.hal.allocator import Allocator, BufferUsage, MemoryType
from hal_core.hal.buffer import Buffer
from hal_core.hal.device import Device
from hal_core.hal.driver import DeviceInfo, Driver, parse_device_uri
from hal_core.hal.executable_cache import LoaderExecutableCache
from hal_core.hal.fence import FenceLike, as_timepoints
from hal_core.hal.semaphore import Semaphore, wrap_failure
from hal_local import cpu
from hal_local.command_buffer import LocalCommandBuffer

log = logging.getLogger(__name__)

Timepoints = tuple[tuple[Semaphore, int], ...]

_flat = threading.local()


def run_flat(fn: Callable[[], None]) -> None:
    """Run ``fn`` now, or after the ``run_flat`` already running on this thread returns.

    A signal that releases parked work runs it inside ``Semaphore.signal``, whose own signals
    release more: without this a chain of N parked submissions (or failures) would nest N
    frames deep and end in RecursionError. Work still completes before the outermost call
    returns, in release order.
    """
    queue = getattr(_flat, "queue", None)
    if queue is not None:
        queue.append(fn)
        return
    _flat.queue = queue = collections.deque((fn,))
    try:
        while queue:
            try:
                queue.popleft()()
            except Exception:  # Submission.run/fail never raise; keep draining if one does
                log.exception("local queue callback raised")
    finally:
        _flat.queue = None


class Submission:
    """Queue work: ``fn`` (or None for a barrier), then signal ``signals``."""

    __slots__ = ("device", "done", "fn", "pending", "signals", "what")

    def __init__(
        self, device: LocalDevice, signals: Timepoints, fn: Callable[[], None] | None, what: str
    ) -> None:
        self.device = device
        self.signals = signals
        self.fn = fn
        self.what = what
        self.pending = 0
        self.done = False

    def run(self) -> None:
        """Execute and signal; never raises (failures go to the signal semaphores)."""
        try:
            if self.fn is not None:
                self.fn()
        except Exception as e:  # noqa: BLE001 - every failure must reach the waiters
            self.fail(wrap_failure(e, self.what))
            return
        except BaseException as e:
            # KeyboardInterrupt/SystemExit: still release the waiters, then let it propagate.
            self.fail(wrap_failure(e, self.what))
            raise
        for sem, value in self.signals:
            try:
                sem.signal(value)
            except UsageError as e:
                sem.fail(HalRuntimeError(f"{self.what}: could not signal {sem!r} to {value}: {e}"))

    def fail(self, error: BaseException) -> None:
        log.debug("%s failed: %s", self.what, error)
        for sem, _ in self.signals:
            sem.fail(error)


def _reached(waits: Timepoints) -> bool:
    return all(sem._value >= value and sem._failure is None for sem, value in waits)


class LocalDevice(Device):
    """A host CPU device; subclasses decide where submissions run and how tiles are spread."""

    command_buffer_class = LocalCommandBuffer

    def __init__(self, driver: LocalDriver, device_id: str, workers: int) -> None:
        cache = LoaderExecutableCache(driver.registry, device_id)
        super().__init__(driver, device_id, Allocator(device_id), cache)
        self.workers = workers
        self._parked: set[Submission] = set()
        self._park_lock = threading.Lock()

    # -- queries ---------------------------------------------------------------------------

    def properties(self) -> dict[str, Any]:
        # CPU features and executable formats are reported by query_features/query_formats
        # (and shown beside these by `hal devices dump`), so they are not repeated here.
        return {"architecture": cpu.architecture(), "workers": self.workers}

    def query_features(self) -> frozenset[str]:
        return cpu.cpu_features()

    def check_variant(self, variant: Any) -> str | None:
        from hal_core.hal.requirements import check_cpu_requirements, parse_requirement

        if not variant.features:
            return None
        try:
            requirements = [parse_requirement(f) for f in variant.features]
        except UsageError as e:
            return str(e)
        return check_cpu_requirements(requirements, cpu.cpu_features(), "this CPU")

    # -- scheduling --------------------------------------------------------------------------

    def launch(self, sub: Submission) -> None:
        """Start a submission whose waits are reached."""
        raise NotImplementedError

    def dispatch_tiles(
        self,
        executable: Any,
        entry: int,
        workgroup_count: tuple[int, int, int],
        total: int,
        bindings: list,
        constants: tuple[int, ...],
    ) -> None:
        """Run all ``total`` workgroups of one dispatch; return when they are done."""
        raise NotImplementedError

    def submit(
        self, waits: Timepoints, signals: Timepoints, fn: Callable[[], None] | None, what: str
    ) -> None:
        sub = Submission(self, signals, fn, what)
        for sem, value in waits:
            if sem._value < value or sem._failure is not None:
                break
        else:
            self.launch(sub)
            return
        self._park(sub, waits)

    def _park(self, sub: Submission, waits: Timepoints) -> None:
        with self._park_lock:
            # A submit racing close() may get here after _fail_parked ran; parking now would
            # leave its signals pending forever.
            closed = self.closed
            if not closed:
                sub.pending = len(waits)
                self._parked.add(sub)
        if closed:
            sub.fail(self._never_started(sub, "it waited on semaphores that were never signalled"))
            return

        def on_reached(error: BaseException | None) -> None:
            with self._park_lock:
                if sub.done:
                    return
                if error is None:
                    sub.pending -= 1
                    if sub.pending:
                        return
                sub.done = True
                self._parked.discard(sub)
            if error is not None:
                run_flat(lambda: sub.fail(error))
            else:
                self.launch(sub)

        for sem, value in waits:
            sem.on_reached(value, on_reached)

    def _fail_parked(self) -> None:
        with self._park_lock:
            parked = list(self._parked)
            self._parked.clear()
            for sub in parked:
                sub.done = True
        for sub in parked:
            sub.fail(self._never_started(sub, "it waited on semaphores that were never signalled"))

    def _never_started(self, sub: Submission, why: str) -> HalRuntimeError:
        return HalRuntimeError(
            f"{sub.what} never started: device {self.id} was closed while {why}; "
            f"submit work only to an open device and wait for it before close()"
        )

    # -- queue operations --------------------------------------------------------------------

    def queue_alloca(
        self,
        wait: FenceLike,
        signal: FenceLike,
        size: int,
        memory_type: MemoryType = MemoryType.DEVICE_LOCAL | MemoryType.HOST_VISIBLE,
        usage: BufferUsage = BufferUsage.DEFAULT,
    ) -> Buffer:
        self._check_open("queue_alloca")
        waits, signals = as_timepoints(wait, "wait"), as_timepoints(signal, "signal")
        # Host memory is ready at once; the signal still orders it after the waits.
        buffer = self.allocator.allocate_buffer(size, memory_type, usage)
        self.submit(waits, signals, None, "queue_alloca")
        return buffer

    def queue_dealloca(self, wait: FenceLike, signal: FenceLike, buffer: Buffer) -> None:
        self._check_open("queue_dealloca")
        if not isinstance(buffer, Buffer):
            raise UsageError(f"queue_dealloca expects a Buffer, got {type(buffer).__name__}")
        waits, signals = as_timepoints(wait, "wait"), as_timepoints(signal, "signal")
        self.submit(waits, signals, buffer.release, "queue_dealloca")

    def queue_write(
        self, wait: FenceLike, signal: FenceLike, data: Any, target: Buffer, target_offset: int = 0
    ) -> None:
        from hal_core.hal.allocator import BufferUsage
        from hal_core.hal.buffer import host_bytes

        self._check_open("queue_write")
        if not isinstance(target, Buffer):
            raise UsageError(f"queue_write expects a target Buffer, got {type(target).__name__}")
        src = host_bytes(data, "queue_write")
        offset, length = target.check_range(target_offset, src.size, "queue_write target")
        target._require(BufferUsage.TRANSFER_TARGET, "queue_write")
        waits, signals = as_timepoints(wait, "wait"), as_timepoints(signal, "signal")
        region = target._storage[offset : offset + length]
        if _reached(waits):
            # The caller may reuse ``data`` once we return: copy now, as the waits allow.
            region[:] = src
            self.submit(waits, signals, None, "queue_write")
            return
        src = src.copy()  # the copy waits: keep our own bytes

        def write() -> None:
            region[:] = src

        self.submit(waits, signals, write, "queue_write")

    def queue_read(
        self, wait: FenceLike, signal: FenceLike, source: Buffer, source_offset: int, target: Any
    ) -> None:
        from hal_core.hal.allocator import BufferUsage
        from hal_core.hal.buffer import writable_host_bytes

        self._check_open("queue_read")
        if not isinstance(source, Buffer):
            raise UsageError(f"queue_read expects a source Buffer, got {type(source).__name__}")
        dst = writable_host_bytes(target, "queue_read")
        offset, length = source.check_range(source_offset, dst.size, "queue_read source")
        source._require(BufferUsage.TRANSFER_SOURCE, "queue_read")
        waits, signals = as_timepoints(wait, "wait"), as_timepoints(signal, "signal")
        region = source._storage[offset : offset + length]

        def read() -> None:
            dst[:] = region

        self.submit(waits, signals, read, "queue_read")

    def queue_execute(
        self,
        wait: FenceLike,
        signal: FenceLike,
        command_buffers: Sequence[LocalCommandBuffer],
        binding_tables: Sequence[Sequence[Any] | None] | None = None,
    ) -> None:
        if self.closed:
            self._check_open("queue_execute")
        waits = as_timepoints(wait, "wait")
        signals = as_timepoints(signal, "signal")
        if binding_tables is not None and len(binding_tables) != len(command_buffers):
            raise UsageError(
                f"queue_execute: {len(command_buffers)} command buffers but "
                f"{len(binding_tables)} binding tables; pass one table (or None) per buffer"
            )
        work = []
        for i, cb in enumerate(command_buffers):
            if not isinstance(cb, LocalCommandBuffer) or cb.device is not self:
                raise UsageError(
                    f"queue_execute: command buffer {i} ({cb!r}) was not created by "
                    f"device {self.id}"
                )
            table = binding_tables[i] if binding_tables is not None else None
            cb.check_submittable(table)
            work.append((cb.execute, cb.bind(table)))
        for cb in command_buffers:
            cb.mark_submitted()
        if not work:
            fn = None
        elif len(work) == 1:
            execute, slots = work[0]

            def fn() -> None:
                execute(slots)
        else:

            def fn() -> None:
                for execute, slots in work:
                    execute(slots)

        self.submit(waits, signals, fn, "queue_execute")

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._fail_parked()


class LocalDriver(Driver):
    """A driver with exactly one device, the host CPU; URI parameters per subclass."""

    device_class: type[LocalDevice]
    #: accepted URI parameters and what they mean (for error messages)
    params: ClassVar[dict[str, str]] = {}

    def __init__(self, registry: Any) -> None:
        if registry is None or not hasattr(registry, "loaders"):
            raise UsageError(
                f"driver {self.name} needs the plugin registry (for executable "
                f"loaders); create it with hal_core.registry.get_registry()"
                f".create_driver({self.name!r})"
            )
        super().__init__(registry)

    def default_workers(self) -> int:
        return cpu.usable_cores()

    def query_available_devices(self) -> list[DeviceInfo]:
        uri = f"{self.name}://"
        props = {"architecture": cpu.architecture(), "workers": self.default_workers()}
        return [
            DeviceInfo(
                uri=uri, name=f"{self.name} host CPU ({cpu.architecture()})", properties=props
            )
        ]

    def _parse(self, uri: str | None) -> tuple[str, dict[str, str]]:
        if uri is None:
            return f"{self.name}://", {}
        path, params = parse_device_uri(uri, self.name)
        if path not in ("", "0"):
            raise UsageError(
                f"device URI {uri!r}: {self.name} has one device, "
                f"'{self.name}://'; got device path {path!r}"
            )
        unknown = sorted(set(params) - set(self.params))
        if unknown:
            accepted = ", ".join(f"{k} ({v})" for k, v in self.params.items()) or "none"
            raise UsageError(
                f"device URI {uri!r}: unknown parameter(s) {', '.join(unknown)}; "
                f"{self.name} accepts: {accepted}"
            )
        return uri, params
