"""Element types and tensor types of the tensor IR.

Shapes are static. Element types are named as in MLIR (``f32``, ``i64``, ``i1``) and map one to
one onto numpy dtype names (``float32``, ``int64``, ``bool``). ``bool`` is accepted as a
spelling of ``i1`` on input; ``i1`` is what the printer writes.
"""

from __future__ import annotations

from dataclasses import dataclass

from hal_core.errors import VerificationError

# IR name -> numpy dtype name. Order is the order used in messages.
ELEMENT_TYPES: dict[str, str] = {
    "f16": "float16",
    "f32": "float32",
    "f64": "float64",
    "i8": "int8",
    "i16": "int16",
    "i32": "int32",
    "i64": "int64",
    "u8": "uint8",
    "u16": "uint16",
    "u32": "uint32",
    "u64": "uint64",
    "i1": "bool",
}
_ALIASES = {"bool": "i1"}
_FROM_NUMPY = {v: k for k, v in ELEMENT_TYPES.items()}

FLOAT_TYPES = frozenset({"f16", "f32", "f64"})
SIGNED_TYPES = frozenset({"i8", "i16", "i32", "i64"})
UNSIGNED_TYPES = frozenset({"u8", "u16", "u32", "u64"})
INTEGER_TYPES = SIGNED_TYPES | UNSIGNED_TYPES
NUMERIC_TYPES = FLOAT_TYPES | INTEGER_TYPES  # everything but i1


def element_type(name: str) -> str:
    """Canonical IR element type for an IR name, alias or numpy dtype name (``float32``)."""
    if not isinstance(name, str):  # numpy dtypes and scalar types (np.float16)
        import numpy as np

        try:
            name = np.dtype(name).name
        except TypeError:
            name = str(name)
    if name in ELEMENT_TYPES:
        return name
    if name in _ALIASES:
        return _ALIASES[name]
    if name in _FROM_NUMPY:
        return _FROM_NUMPY[name]
    raise VerificationError(
        f"unknown element type {name!r}; expected one of {', '.join(ELEMENT_TYPES)} "
        f"(or a numpy dtype name such as 'float32')")


def numpy_dtype_name(dtype: str) -> str:
    """numpy dtype name of an IR element type: ``numpy_dtype_name('f32') == 'float32'``."""
    return ELEMENT_TYPES[element_type(dtype)]


#: The largest tensor, in bytes, that the IR accepts; module files refuse larger buffers too.
MAX_TENSOR_BYTES = 2**48


@dataclass(frozen=True)
class TensorType:
    """A ranked tensor type with a static shape: ``tensor<4x4xf32>``; rank 0 is ``tensor<f32>``."""

    shape: tuple[int, ...]
    dtype: str  # IR element type name: "f32", "i64", "i1", ...

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        object.__setattr__(self, "dtype", element_type(self.dtype))
        for d in self.shape:
            if d < 0:
                raise VerificationError(
                    f"tensor dimensions must be >= 0, found shape {self.shape}")
        if self.byte_size > MAX_TENSOR_BYTES:
            raise VerificationError(
                f"a tensor of shape {self.shape} and element type {self.dtype} holds "
                f"{self.byte_size} bytes; hal supports at most 2**48 bytes per tensor (the "
                f"module format's limit); use smaller shapes")

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def numpy_dtype(self) -> str:
        """numpy dtype name, e.g. ``'float32'``."""
        return ELEMENT_TYPES[self.dtype]

    @property
    def itemsize(self) -> int:
        return 1 if self.dtype == "i1" else int(self.dtype[1:]) // 8

    @property
    def byte_size(self) -> int:
        return self.size * self.itemsize

    def with_shape(self, shape: tuple[int, ...]) -> TensorType:
        return TensorType(tuple(shape), self.dtype)

    def with_dtype(self, dtype: str) -> TensorType:
        return TensorType(self.shape, dtype)

    def __str__(self) -> str:
        dims = "".join(f"{d}x" for d in self.shape)
        return f"tensor<{dims}{self.dtype}>"
