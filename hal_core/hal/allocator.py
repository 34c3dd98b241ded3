"""Allocators: memory types, buffer usage bits, and the host (heap) allocator.

Every buffer a local device hands out is host memory, 64-byte aligned because generated
kernels assume it. Drivers with device memory subclass :class:`Allocator` and override
:meth:`Allocator.allocate_buffer` and :meth:`Allocator.memory_heaps`.
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass

from hal_core.errors import UsageError
from hal_core.hal.buffer import Buffer, host_bytes

#: Alignment (bytes) of every buffer's base address.
BUFFER_ALIGNMENT = 64


class MemoryType(enum.IntFlag):
    """Where memory lives and how the host sees it (IREE's iree_hal_memory_type_t)."""

    NONE = 0
    OPTIMAL = 1 << 0
    HOST_VISIBLE = 1 << 1
    HOST_COHERENT = 1 << 2
    HOST_CACHED = 1 << 3
    HOST_LOCAL = 1 << 4 | HOST_VISIBLE
    DEVICE_VISIBLE = 1 << 5
    DEVICE_LOCAL = 1 << 6 | DEVICE_VISIBLE


class BufferUsage(enum.IntFlag):
    """What a buffer may be used for (IREE's iree_hal_buffer_usage_t)."""

    NONE = 0
    TRANSFER_SOURCE = 1 << 0
    TRANSFER_TARGET = 1 << 1
    TRANSFER = TRANSFER_SOURCE | TRANSFER_TARGET
    DISPATCH_STORAGE = 1 << 2
    MAPPING = 1 << 3
    DEFAULT = TRANSFER | DISPATCH_STORAGE | MAPPING


#: What a local (CPU) device's memory is: host memory the "device" reads directly.
HOST_MEMORY = (
    MemoryType.HOST_LOCAL
    | MemoryType.HOST_COHERENT
    | MemoryType.HOST_CACHED
    | MemoryType.DEVICE_LOCAL
)


@dataclass(frozen=True)
class MemoryHeap:
    """One kind of memory an allocator can allocate from."""

    memory_type: MemoryType
    allowed_usage: BufferUsage
    max_allocation_size: int
    min_alignment: int = BUFFER_ALIGNMENT


def aligned_host_array(size: int):  # -> numpy.ndarray (numpy imported lazily)
    """A zeroed 1-D uint8 array of ``size`` bytes whose data starts on a 64-byte boundary."""
    import numpy as np

    raw = np.zeros(size + BUFFER_ALIGNMENT, dtype=np.uint8)
    start = -raw.__array_interface__["data"][0] % BUFFER_ALIGNMENT
    return raw[start : start + size]


class Allocator:
    """Allocates buffers from host memory (the heap allocator of the local drivers)."""

    def __init__(self, device_id: str = "", max_allocation_size: int = 1 << 40) -> None:
        self.device_id = device_id
        self._heaps = (MemoryHeap(HOST_MEMORY, BufferUsage.DEFAULT, max_allocation_size),)
        self._max_size = max_allocation_size
        self._resolved: dict[tuple[MemoryType, BufferUsage], MemoryType] = {}
        self._lock = threading.Lock()
        self.bytes_allocated = 0
        self.bytes_freed = 0

    def memory_heaps(self) -> tuple[MemoryHeap, ...]:
        return self._heaps

    def query_compatibility(self, memory_type: MemoryType, usage: BufferUsage) -> bool:
        """True when some heap provides ``memory_type`` with ``usage``."""
        return any(
            (h.memory_type & memory_type) == memory_type and (h.allowed_usage & usage) == usage
            for h in self._heaps
        )

    def _buffer_type(self, memory_type: MemoryType, usage: BufferUsage) -> MemoryType:
        """The memory type of a buffer allocated for this request (cached: flag math is slow)."""
        key = (memory_type, usage)
        resolved = self._resolved.get(key)
        if resolved is None:
            for heap in self._heaps:
                if (heap.memory_type & memory_type) == memory_type and (
                    heap.allowed_usage & usage
                ) == usage:
                    resolved = self._resolved[key] = heap.memory_type
                    break
            else:
                have = ", ".join(
                    f"{h.memory_type!r} usage {h.allowed_usage!r}" for h in self._heaps
                )
                raise UsageError(
                    f"device {self.device_id or '?'} cannot allocate memory type "
                    f"{memory_type!r} with usage {usage!r}; it has: {have}"
                )
        return resolved

    #: What :meth:`allocate_buffer` allocates when no memory type / usage is given. A device
    #: whose memory the host cannot map sets ``MemoryType.DEVICE_LOCAL`` and a usage without
    #: ``MAPPING``; data then moves with ``Device.queue_write`` / ``queue_read``.
    default_memory_type: MemoryType = MemoryType.DEVICE_LOCAL | MemoryType.HOST_VISIBLE
    default_usage: BufferUsage = BufferUsage.DEFAULT

    def allocate_buffer(
        self,
        size: int,
        memory_type: MemoryType | None = None,
        usage: BufferUsage | None = None,
    ) -> Buffer:
        """A new zeroed buffer of ``size`` bytes, 64-byte aligned (default memory type and
        usage: :attr:`default_memory_type`, :attr:`default_usage`)."""
        if memory_type is None:
            memory_type = self.default_memory_type
        if usage is None:
            usage = self.default_usage
        if type(size) is not int or size < 0 or size > self._max_size:
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise UsageError(f"buffer size must be a non-negative int of bytes, got {size!r}")
            raise UsageError(
                f"buffer of {size} bytes exceeds the maximum allocation size {self._max_size} "
                f"of device {self.device_id or '?'}"
            )
        buffer_type = self._buffer_type(memory_type, usage)
        storage = aligned_host_array(size)
        with self._lock:
            self.bytes_allocated += size
        return Buffer(self, storage, buffer_type, usage)

    def import_host(self, data, usage: BufferUsage = BufferUsage.DEFAULT) -> Buffer:
        """A buffer holding a copy of ``data`` (bytes-like or numpy array)."""
        src = host_bytes(data, "Allocator.import_host")
        buf = self.allocate_buffer(src.size, usage=usage & self.default_usage)
        buf._storage[:] = src
        return buf

    #: Whether :meth:`wrap_host` can alias host memory. An allocator of device memory that the
    #: host cannot hand over sets this False; callers then copy into an allocated buffer.
    can_wrap_host = True

    def wrap_host(self, array, usage: BufferUsage = BufferUsage.DEFAULT) -> Buffer:
        """A buffer aliasing the 1-D ``numpy.uint8`` ``array`` without copying.

        The caller keeps ``array`` alive while the buffer is in use; the buffer is not counted
        in :meth:`statistics` and :meth:`Buffer.release` must not be called on it. Kernels rely
        on 64-byte aligned bindings (the dispatch ABI), so callers wrap only aligned memory.
        A read-only ``array`` gives a buffer whose writes fail at execution.
        """
        return Buffer(self, array, self._heaps[0].memory_type, usage)

    def _release(self, size: int) -> None:
        with self._lock:
            self.bytes_freed += size

    def statistics(self) -> dict[str, int]:
        return {
            "bytes_allocated": self.bytes_allocated,
            "bytes_freed": self.bytes_freed,
            "bytes_live": self.bytes_allocated - self.bytes_freed,
        }
