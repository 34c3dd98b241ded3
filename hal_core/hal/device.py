"""Devices: an allocator, an executable cache, command buffers, semaphores and a queue.

Queue operations take *wait* and *signal* fences (a :class:`~hal_core.hal.fence.Fence` or a
list of ``(semaphore, value)``): the operation starts once every wait is reached and signals
every signal timepoint when it completes. If it fails, or a wait fails, the signal semaphores
fail with that error, so whoever waits on them sees it; the queue call itself does not raise
for execution errors (it raises UsageError for malformed requests).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hal_core.errors import UsageError
from hal_core.hal.allocator import Allocator, BufferUsage, MemoryType
from hal_core.hal.buffer import Buffer
from hal_core.hal.command_buffer import CommandBuffer, CommandBufferMode
from hal_core.hal.executable_cache import ExecutableCache
from hal_core.hal.fence import FenceLike
from hal_core.hal.semaphore import Semaphore


class Device:
    """Base of every HAL device; drivers implement the queue operations."""

    command_buffer_class: type[CommandBuffer] = CommandBuffer

    def __init__(
        self, driver: Any, device_id: str, allocator: Allocator, executable_cache: ExecutableCache
    ) -> None:
        self.driver = driver
        self.id = device_id
        self.allocator = allocator
        self.executable_cache = executable_cache
        self.closed = False

    def __repr__(self) -> str:
        return f"<Device {self.id}{' closed' if self.closed else ''}>"

    def __enter__(self) -> Device:  # noqa: PYI034 - Self needs Python 3.11
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- queries -------------------------------------------------------------------------------

    def properties(self) -> dict[str, Any]:
        """JSON-serialisable facts about the device (shown by ``hal devices dump``)."""
        return {}

    def query_formats(self) -> tuple[str, ...]:
        """The executable formats this device can prepare."""
        return self.executable_cache.formats()

    def can_prepare(self, format: str) -> bool:
        return self.executable_cache.can_prepare(format)

    def query_features(self) -> frozenset[str]:
        """Features this device has, for listings and for the default :meth:`check_variant`
        (a CPU device: its ``cpu:`` features in LLVM's spelling, e.g. ``avx2``, ``sse4.1``)."""
        return frozenset()

    def check_variant(self, variant: Any) -> str | None:
        """None when this device can run ``variant`` (its format aside), else a one-line reason.

        ``variant.features`` are requirements in the vocabulary of
        :mod:`hal_core.hal.requirements` (``cpu:avx2``, ``vulkan:api>=1.1``, ...). This default
        checks ``cpu:`` requirements (and bare legacy names) against :meth:`query_features` and
        refuses every other namespace; a device with other capabilities (Vulkan version,
        extensions, limits) overrides it. A malformed requirement is a reason, not an error.
        """
        from hal_core.hal.requirements import check_cpu_requirements, parse_requirement

        try:
            requirements = [parse_requirement(f) for f in variant.features]
        except UsageError as e:
            return str(e)
        if not requirements:
            return None
        return check_cpu_requirements(requirements, frozenset(self.query_features()),
                                      f"device {self.id}")

    # -- object creation ---------------------------------------------------------------------

    def _check_open(self, op: str) -> None:
        if self.closed:
            raise UsageError(f"{op}: device {self.id} is closed; create a new device")

    def create_command_buffer(
        self, mode: CommandBufferMode = CommandBufferMode.ONE_SHOT, binding_capacity: int = 0
    ) -> CommandBuffer:
        self._check_open("create_command_buffer")
        return self.command_buffer_class(self, mode, binding_capacity)

    def create_semaphore(self, initial: int = 0) -> Semaphore:
        self._check_open("create_semaphore")
        return Semaphore(initial)

    # -- queue operations ----------------------------------------------------------------------

    def queue_alloca(
        self,
        wait: FenceLike,
        signal: FenceLike,
        size: int,
        memory_type: MemoryType = MemoryType.DEVICE_LOCAL | MemoryType.HOST_VISIBLE,
        usage: BufferUsage = BufferUsage.DEFAULT,
    ) -> Buffer:
        """Return a buffer that may be used once ``signal`` is reached."""
        raise NotImplementedError

    def queue_dealloca(self, wait: FenceLike, signal: FenceLike, buffer: Buffer) -> None:
        """Release ``buffer`` once ``wait`` is reached."""
        raise NotImplementedError

    def queue_execute(
        self,
        wait: FenceLike,
        signal: FenceLike,
        command_buffers: Sequence[CommandBuffer],
        binding_tables: Sequence[Sequence[Any] | None] | None = None,
    ) -> None:
        """Execute ``command_buffers`` in order after ``wait``; then signal ``signal``.

        ``binding_tables[i]`` (a sequence of Buffer or ``(Buffer, offset, length)``) fills the
        slots of ``command_buffers[i]``.
        """
        raise NotImplementedError

    def queue_write(
        self, wait: FenceLike, signal: FenceLike, data: Any, target: Buffer, target_offset: int = 0
    ) -> None:
        """Copy host ``data`` (bytes-like or a numpy array: its raw bytes) into ``target``.

        The copy happens after ``wait``; ``signal`` is reached once it is in ``target``. The
        bytes are taken when this is called, so the caller may reuse ``data`` at once. Works
        for any memory type (it is how data reaches memory the host cannot map).
        """
        raise NotImplementedError

    def queue_read(
        self, wait: FenceLike, signal: FenceLike, source: Buffer, source_offset: int, target: Any
    ) -> None:
        """Copy ``target.nbytes`` bytes of ``source`` from ``source_offset`` into host ``target``.

        ``target`` is a writable host buffer (numpy array, bytearray, memoryview); it is
        written after ``wait`` and holds the bytes once ``signal`` is reached. The caller keeps
        it alive and leaves it alone until then.
        """
        raise NotImplementedError

    def queue_barrier(self, wait: FenceLike, signal: FenceLike) -> None:
        """Signal ``signal`` once ``wait`` is reached (no work)."""
        self.queue_execute(wait, signal, ())

    def wait_idle(self, timeout: float | None = None) -> None:
        """Block until all submitted work finished."""

    def close(self) -> None:
        """Release the device's resources; idempotent."""
        self.closed = True
