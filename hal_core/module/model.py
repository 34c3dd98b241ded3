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

FORMAT_VERSION = 2  # 2: splat constants


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


def host_op_refs(op: HostOp) -> tuple[BufferRef, ...]:
    """The buffer references a host-program op touches (none for a barrier)."""
    if isinstance(op, Dispatch):
        return op.bindings
    if isinstance(op, Copy):
        return (op.source, op.target)
    return (op.target,) if isinstance(op, Fill) else ()


@dataclass(frozen=True)
class Function:
    name: str
    inputs: tuple[TensorType, ...]
    outputs: tuple[TensorType, ...]
    program: tuple[HostOp, ...]
    transient_size: int = 0   # bytes of the per-call transient arena (peak transient bytes)


@dataclass(frozen=True)
class ConstantPack:
    """A module constant an entry point reads in a layout of its own, made once at load.

    Binding ``binding`` of the entry point must be bound to a CONSTANT region in every dispatch
    of it. At load, the runtime allocates ``packed_size`` bytes and runs this variant's entry
    point ``entry_point`` (a *load-time* entry point, never dispatched by a host program) once
    with two bindings, (the constant region, the packed buffer), over that entry point's
    workgroup count; every dispatch then binds the packed buffer in place of the constant.
    The same constant region packed by the same entry point is packed once per load.
    """

    binding: int
    entry_point: int
    packed_size: int


@dataclass(frozen=True)
class VariantEntryPoint:
    """One entry point of a variant.

    ``scratch_size``: bytes of scratch memory the kernel wants per dispatch. When any variant
    of an executable asks for scratch for an entry point, the compiler gives every dispatch of
    it one more binding, a transient region of the largest size asked, after the kernel's own
    bindings, and counts it in every variant's ``binding_count``; a variant that asked for
    none ignores it. ``constant_packs``: see :class:`ConstantPack`.
    """

    name: str
    workgroup_count: tuple[int, int, int]
    workgroup_size: tuple[int, int, int] = (1, 1, 1)
    binding_count: int = 0
    constant_count: int = 0
    scratch_size: int = 0
    constant_packs: tuple[ConstantPack, ...] = ()


@dataclass(frozen=True)
class Variant:
    """One compiled form of an executable, for one target backend and format."""

    target_backend: str      # e.g. "vmvx"
    format: str              # e.g. "vmvx-bytecode"
    features: tuple[str, ...]  # required device features, e.g. ("avx512f",)
    entry_points: tuple[VariantEntryPoint, ...]
    payload: bytes | memoryview  # a read-only memoryview into the file when loaded


def load_time_entry_points(variant: Variant) -> frozenset[int]:
    """Indices of the variant's load-time (constant packing) entry points."""
    return frozenset(p.entry_point for ep in variant.entry_points for p in ep.constant_packs)


def dispatchable_entry_points(variant: Variant) -> tuple[VariantEntryPoint, ...]:
    """The entry points a host program may dispatch: those before the load-time ones."""
    tail = load_time_entry_points(variant)
    return variant.entry_points[:len(variant.entry_points) - len(tail)]


@dataclass(frozen=True)
class Executable:
    name: str
    variants: tuple[Variant, ...]


@dataclass(frozen=True)
class Constant:
    """A read-only buffer of the module.

    ``data``: raw little-endian bytes; 64-byte aligned in the file, and a read-only memoryview
    into the (memory-mapped) file when loaded. A *splat* constant, one whose elements are all
    equal (the onnx light models' ConstantOfShape weights: 100 MB for ResNet-50), has empty
    ``data`` and stores the element's bytes in ``splat`` and its byte size in ``splat_size``
    (a multiple of ``len(splat)``); the runtime fills it once when it loads the module.
    """

    name: str
    data: bytes | memoryview
    splat: bytes = b""
    splat_size: int = 0

    @property
    def size(self) -> int:
        """Bytes of the constant."""
        return self.splat_size if self.splat else memoryview(self.data).nbytes

    def contents(self):  # -> numpy.ndarray (1-D uint8, read-only) or memoryview
        """The constant's bytes: ``data``, or for a splat a freshly filled, 64-byte aligned,
        read-only uint8 array (made on each call: the caller keeps it)."""
        if not self.splat:
            return self.data
        import numpy as np

        from hal_core.hal.allocator import aligned_host_array

        try:
            out = aligned_host_array(self.splat_size)
        except (MemoryError, ValueError) as e:
            from hal_core.runtime.memory import allocation_failed

            raise allocation_failed(f"splat constant {self.name!r}", self.splat_size, e) from None
        if out.size:
            pattern = np.frombuffer(self.splat, dtype=np.uint8)
            out.reshape(-1, pattern.size)[:] = pattern
        out.flags.writeable = False
        return out


@dataclass(frozen=True)
class Module:
    name: str
    functions: tuple[Function, ...]
    executables: tuple[Executable, ...]
    constants: tuple[Constant, ...] = ()
    execution_model: ExecutionModel = ExecutionModel.ASYNC
    version: int = FORMAT_VERSION
    metadata: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
