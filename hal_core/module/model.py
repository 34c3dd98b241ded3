"""The in-memory form of a hal module (``.halm``), independent of its FlatBuffer encoding.

The compiler builds these objects; :mod:`hal_core.module.writer` serialises them and
:mod:`hal_core.module.reader` reads them back (verifying the file). The runtime executes them.

Buffers in a host program are named by :class:`BufferRef`: a region of one of the function's
buffer *slots*. The slots of a function are, in order:

* ``INPUT i``     - the caller's i-th argument (read only);
* ``OUTPUT i``    - the i-th result, allocated per call with ``outputs[i].byte_size`` bytes;
* ``CONSTANT i``  - the module's i-th constant (read only);
* ``TRANSIENT``   - one arena of ``Function.transient_size`` bytes per call; buffer planning
                    assigns each intermediate an offset in it (64-byte aligned), reusing space
                    by liveness. ``index`` is unused (0).

The runtime records a host program once into a reusable command buffer whose binding table has
one slot per buffer slot, and rebinds the slots on each call.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

FORMAT_VERSION = 1


class Slot(enum.IntEnum):
    INPUT = 0
    OUTPUT = 1
    CONSTANT = 2
    TRANSIENT = 3


class ExecutionModel(enum.IntEnum):
    ASYNC = 0   # command buffers + timeline semaphores (the default)
    INLINE = 1  # the host calls kernels directly; no command buffers or semaphores


#: Element sizes of the dtype names (numpy's) a TensorType may carry; the module checks
#: (:mod:`hal_core.module.validate`) refuse any other name. A table rather than numpy, so that
#: what a module may hold does not depend on what numpy happens to accept.
DTYPE_SIZES = {
    "bool": 1, "int8": 1, "uint8": 1, "int16": 2, "uint16": 2, "float16": 2,
    "int32": 4, "uint32": 4, "float32": 4, "int64": 8, "uint64": 8, "float64": 8,
    "complex64": 8, "complex128": 16,
}


@dataclass(frozen=True)
class TensorType:
    shape: tuple[int, ...]
    dtype: str  # numpy dtype name: "float32", "int8", "bool", ... (a key of DTYPE_SIZES)

    @property
    def byte_size(self) -> int:
        n = DTYPE_SIZES[self.dtype]
        for d in self.shape:
            n *= d
        return n


@dataclass(frozen=True)
class BufferRef:
    slot: Slot
    index: int
    offset: int
    length: int


@dataclass(frozen=True)
class Dispatch:
    executable: int          # index into Module.executables
    entry_point: int         # index into the chosen variant's entry_points (same in every variant)
    bindings: tuple[BufferRef, ...]
    constants: tuple[int, ...] = ()  # 32-bit push constants


@dataclass(frozen=True)
class Copy:
    source: BufferRef
    target: BufferRef        # same length as source


@dataclass(frozen=True)
class Fill:
    target: BufferRef
    pattern: bytes           # 1, 2 or 4 bytes


@dataclass(frozen=True)
class Barrier:
    """An execution barrier: commands after it see the results of commands before it."""


HostOp = Dispatch | Copy | Fill | Barrier


@dataclass(frozen=True)
class Function:
    name: str
    inputs: tuple[TensorType, ...]
    outputs: tuple[TensorType, ...]
    program: tuple[HostOp, ...]
    transient_size: int = 0   # bytes of the per-call transient arena (peak transient bytes)


@dataclass(frozen=True)
class VariantEntryPoint:
    name: str
    workgroup_count: tuple[int, int, int]
    workgroup_size: tuple[int, int, int] = (1, 1, 1)
    binding_count: int = 0
    constant_count: int = 0


@dataclass(frozen=True)
class Variant:
    """One compiled form of an executable, for one target backend and format."""

    target_backend: str      # e.g. "vmvx"
    format: str              # e.g. "vmvx-bytecode"
    features: tuple[str, ...]  # required device features, e.g. ("avx512f",)
    entry_points: tuple[VariantEntryPoint, ...]
    payload: bytes | memoryview  # a read-only memoryview into the file when loaded


@dataclass(frozen=True)
class Executable:
    name: str
    variants: tuple[Variant, ...]


@dataclass(frozen=True)
class Constant:
    name: str
    data: bytes | memoryview  # raw little-endian bytes; 64-byte aligned in the file; a
                              # read-only memoryview into the (memory-mapped) file when loaded


@dataclass(frozen=True)
class Module:
    name: str
    functions: tuple[Function, ...]
    executables: tuple[Executable, ...]
    constants: tuple[Constant, ...] = ()
    execution_model: ExecutionModel = ExecutionModel.ASYNC
    version: int = FORMAT_VERSION
    metadata: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
