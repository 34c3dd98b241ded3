"""Buffer views: a buffer seen as a dense tensor of one shape and element type."""

from __future__ import annotations

from typing import Any

from hal_core.errors import UsageError
from hal_core.hal.buffer import Buffer


class BufferView:
    """Shape + element type (a numpy dtype name such as ``"float32"``) over a buffer.

    Row-major and dense. :meth:`to_numpy` is a zero-copy view of host-visible memory.
    """

    __slots__ = ("buffer", "byte_offset", "element_type", "shape")

    def __init__(
        self, buffer: Buffer, shape: tuple[int, ...], element_type: str, byte_offset: int = 0
    ) -> None:
        import numpy as np

        try:
            if element_type is None:
                raise TypeError
            dtype = np.dtype(element_type)
        except TypeError:
            raise UsageError(
                f"BufferView: unknown element type {element_type!r}; use a numpy "
                f"dtype name such as 'float32' or 'int8'"
            ) from None
        shape = tuple(shape)
        if any(not isinstance(d, int) or d < 0 for d in shape):
            raise UsageError(f"BufferView: shape must be non-negative ints, got {shape!r}")
        count = 1
        for d in shape:
            count *= d
        buffer.check_range(byte_offset, count * dtype.itemsize, "BufferView")
        self.buffer = buffer
        self.shape = shape
        self.element_type = dtype.name
        self.byte_offset = byte_offset

    @property
    def byte_length(self) -> int:
        import numpy as np

        n = np.dtype(self.element_type).itemsize
        for d in self.shape:
            n *= d
        return n

    def __repr__(self) -> str:
        dims = "x".join(str(d) for d in self.shape)
        return f"<BufferView {dims}{'x' if dims else ''}{self.element_type}>"

    def to_numpy(self) -> Any:
        """A zero-copy numpy view of the tensor (writes go to the buffer)."""
        import numpy as np

        raw = self.buffer.map(self.byte_offset, self.byte_length)
        return raw.view(np.dtype(self.element_type)).reshape(self.shape)

    @classmethod
    def from_numpy(cls, allocator: Any, array: Any) -> BufferView:
        """Allocate a buffer holding a copy of ``array`` and view it."""
        import numpy as np

        arr = np.ascontiguousarray(array)
        buf = allocator.allocate_buffer(arr.nbytes)
        buf.write(arr)
        return cls(buf, arr.shape, arr.dtype.name)
