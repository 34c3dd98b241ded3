"""Buffers: byte ranges of memory with a memory type and usage bits.

A buffer owns (or, for a subspan, shares) a 1-D ``numpy.uint8`` array of host memory. Host
access goes through :meth:`Buffer.map`, a zero-copy view; ``read``/``write``/``fill``/
``copy_from`` are conveniences over it. Bounds, alignment and usage are checked with errors
that name the buffer's size and what was asked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hal_core.errors import UsageError

if TYPE_CHECKING:
    from hal_core.hal.allocator import Allocator, BufferUsage, MemoryType


def fill_pattern(pattern: bytes | int, pattern_length: int | None = None) -> bytes:
    """Normalise a fill pattern to 1, 2 or 4 little-endian bytes.

    ``pattern`` is bytes of length 1, 2 or 4, or an int together with ``pattern_length``
    (an int with no length is one byte).
    """
    if isinstance(pattern, (bytes, bytearray, memoryview)):
        data = bytes(pattern)
        if pattern_length is not None and pattern_length != len(data):
            raise UsageError(
                f"fill pattern {data!r} is {len(data)} bytes but pattern_length is {pattern_length}"
            )
    elif isinstance(pattern, int) and not isinstance(pattern, bool):
        n = 1 if pattern_length is None else pattern_length
        if n not in (1, 2, 4):
            raise UsageError(f"fill pattern length must be 1, 2 or 4 bytes, got {n}")
        if not 0 <= pattern < (1 << (8 * n)):
            raise UsageError(f"fill pattern {pattern:#x} does not fit in {n} byte(s)")
        data = pattern.to_bytes(n, "little")
    else:
        raise UsageError(f"fill pattern must be bytes or an int, got {type(pattern).__name__}")
    if len(data) not in (1, 2, 4):
        raise UsageError(
            f"fill pattern must be 1, 2 or 4 bytes long, got {len(data)} bytes ({data!r})"
        )
    return data


def check_fill_alignment(offset: int, length: int, pattern_size: int, what: str) -> None:
    if offset % pattern_size or length % pattern_size:
        raise UsageError(
            f"{what}: a {pattern_size}-byte fill pattern needs offset and length that are "
            f"multiples of {pattern_size}; got offset {offset}, length {length}"
        )


def host_bytes(data: Any, what: str) -> Any:
    """The raw bytes of ``data`` (bytes-like or numpy array) as a 1-D uint8 numpy array."""
    import numpy as np

    if isinstance(data, np.ndarray):
        return np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    try:
        return np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)
    except TypeError:
        raise UsageError(
            f"{what}: expected bytes-like data or a numpy array, got {type(data).__name__}"
        ) from None


def writable_host_bytes(target: Any, what: str) -> Any:
    """A writable 1-D uint8 numpy view of host ``target`` (numpy array, bytearray, memoryview).

    A numpy array must be C-contiguous (its bytes are written in place).
    """
    import numpy as np

    if isinstance(target, np.ndarray):
        if not target.flags.c_contiguous or not target.flags.writeable:
            raise UsageError(f"{what}: the target array must be C-contiguous and writable "
                             f"(got contiguous={target.flags.c_contiguous}, writeable="
                             f"{target.flags.writeable}); pass np.empty(...) or a bytearray")
        return target.reshape(-1).view(np.uint8)
    try:
        view = memoryview(target)
    except TypeError:
        raise UsageError(f"{what}: expected a writable host buffer (numpy array, bytearray, "
                         f"memoryview), got {type(target).__name__}") from None
    if view.readonly:
        raise UsageError(f"{what}: the target {type(target).__name__} is read-only; pass a "
                         f"bytearray or a writable numpy array")
    if not view.c_contiguous:
        raise UsageError(f"{what}: the target memoryview is not contiguous")
    return np.frombuffer(view.cast("B"), dtype=np.uint8)


def fill_array(region: Any, pattern: bytes) -> None:
    """Fill a 1-D uint8 array with a repeated pattern (length a multiple of the pattern)."""
    if len(pattern) == 1:
        region.fill(pattern[0])
    else:
        import numpy as np

        region.reshape(-1, len(pattern))[:] = np.frombuffer(pattern, dtype=np.uint8)


class Buffer:
    """A range of memory from an :class:`~hal_core.hal.allocator.Allocator`."""

    __slots__ = (
        "__weakref__",
        "_released",
        "_root",
        "_storage",
        "allocator",
        "byte_offset",
        "memory_type",
        "usage",
    )

    def __init__(
        self,
        allocator: Allocator,
        storage: Any,
        memory_type: MemoryType,
        usage: BufferUsage,
        root: Buffer | None = None,
        byte_offset: int = 0,
    ) -> None:
        self.allocator = allocator
        self.memory_type = memory_type
        self.usage = usage
        self._storage = storage
        self._root = root if root is not None else self
        self.byte_offset = byte_offset
        self._released = False

    @property
    def size(self) -> int:
        """Length in bytes."""
        return self._storage.shape[0]

    byte_length = size

    def __len__(self) -> int:
        return self._storage.shape[0]

    def __repr__(self) -> str:
        sub = f" subspan@{self.byte_offset}" if self._root is not self else ""
        return f"<Buffer {self.size} bytes{sub}>"

    @property
    def root(self) -> Buffer:
        """The allocated buffer this one is a subspan of (itself if allocated directly)."""
        return self._root

    @property
    def released(self) -> bool:
        return self._root._released

    def release(self) -> None:
        """Return the memory to the allocator; the buffer (and its subspans) become unusable."""
        root = self._root
        if not root._released:
            root._released = True
            root.allocator._release(root.size)

    def check_range(self, offset: int, length: int | None, what: str) -> tuple[int, int]:
        """Validate ``[offset, offset + length)`` (None length: to the end); return it."""
        if self._root._released:
            raise UsageError(
                f"{what}: the buffer was released (queue_dealloca or release()); allocate a new one"
            )
        size = self._storage.shape[0]
        if not isinstance(offset, int) or offset < 0:
            raise UsageError(
                f"{what}: offset must be a non-negative int within the buffer of "
                f"{size} bytes, got {offset!r}"
            )
        if length is None:
            length = size - offset
        if not isinstance(length, int) or length < 0 or offset + length > size:
            raise UsageError(
                f"{what}: range [offset {offset}, length {length}] is outside the "
                f"buffer of {size} bytes"
            )
        return offset, length

    def _require(self, usage: BufferUsage, what: str) -> None:
        if (self.usage & usage) != usage:
            raise UsageError(
                f"{what}: the buffer was allocated with usage {self.usage!r}, which "
                f"lacks {usage!r}; allocate it with that usage"
            )

    def subspan(self, offset: int, length: int | None = None) -> Buffer:
        """A buffer aliasing ``[offset, offset + length)`` of this one (no copy)."""
        offset, length = self.check_range(offset, length, "Buffer.subspan")
        return Buffer(
            self.allocator,
            self._storage[offset : offset + length],
            self.memory_type,
            self.usage,
            self._root,
            self.byte_offset + offset,
        )

    def map(self, offset: int = 0, length: int | None = None) -> Any:
        """A zero-copy ``numpy.uint8`` view of the range (host-visible memory only)."""
        from hal_core.hal.allocator import BufferUsage, MemoryType

        offset, length = self.check_range(offset, length, "Buffer.map")
        if not self.memory_type & MemoryType.HOST_VISIBLE:
            raise UsageError(
                f"Buffer.map: memory type {self.memory_type!r} is not host "
                f"visible; copy it to a HOST_VISIBLE buffer first"
            )
        self._require(BufferUsage.MAPPING, "Buffer.map")
        return self._storage[offset : offset + length]

    def read(self, offset: int = 0, length: int | None = None) -> bytes:
        """Copy the range out as bytes."""
        return self.map(offset, length).tobytes()

    def write(self, data: Any, offset: int = 0) -> None:
        """Copy bytes-like ``data`` (or a numpy array's raw bytes) into the buffer at ``offset``."""
        src = host_bytes(data, "Buffer.write")
        self.map(offset, src.size)[:] = src

    def fill(
        self,
        pattern: bytes | int,
        offset: int = 0,
        length: int | None = None,
        pattern_length: int | None = None,
    ) -> None:
        """Fill the range with a repeated 1, 2 or 4-byte pattern."""
        data = fill_pattern(pattern, pattern_length)
        offset, length = self.check_range(offset, length, "Buffer.fill")
        check_fill_alignment(offset, length, len(data), "Buffer.fill")
        fill_array(self.map(offset, length), data)

    def copy_from(
        self, source: Buffer, source_offset: int = 0, offset: int = 0, length: int | None = None
    ) -> None:
        """Copy ``length`` bytes (default: all of ``source`` from its offset) into this buffer."""
        if not isinstance(source, Buffer):
            raise UsageError(
                f"Buffer.copy_from expects a Buffer source, got {type(source).__name__}"
            )
        source_offset, length = source.check_range(source_offset, length, "Buffer.copy_from source")
        self.map(offset, length)[:] = source.map(source_offset, length)
