"""Kernel IR: one kernel per dispatch, target independent.

Dispatch formation turns fused tensor-IR regions into these kernels; a target backend receives
only kernel IR (a :class:`KernelExecutable`) and never sees tensor IR. Every node is a frozen
dataclass; :func:`validate` checks a kernel's internal consistency and raises
:class:`~hal_core.errors.CompileError`.

Operands and bindings
    A kernel reads and writes :class:`KernelOperand` s: a dense row-major array of ``shape`` and
    ``dtype`` (a numpy dtype name, see :data:`DTYPES`) starting ``byte_offset`` bytes into
    binding slot ``binding`` of the dispatch. Several operands may share a binding at different
    offsets. An output may alias an input only if every element is read and written at the same
    iteration point (in-place elementwise); otherwise operands must not overlap.

Indexing maps
    :class:`IndexingMap` maps a point ``p`` of the iteration space to an element of an operand:
    one :class:`AffineExpr` ``sum(coeffs[i] * p[i]) + constant`` per operand dim. This expresses
    identity, transpose (a permutation), broadcast (a dim whose expr ignores ``p``: size-1 dims
    map to constant 0), slices with offsets and positive or negative steps (coeff = step,
    constant = start), and writes into an offset window of a larger output.

Generic kernels (:class:`GenericKernel`)
    For every point ``p`` of ``iteration_space`` the scalar ``body`` (SSA, see :class:`ScalarOp`)
    is evaluated on ``Input(i)`` = ``inputs[i]`` at ``map_i(p)``; ``yields[k]`` is the value of
    output ``k``. Parallel-only kernels store it at ``map_k(p)`` (output maps must be injective).
    If any iterator is ``"reduction"``, every output has a ``combiners[k]`` in
    ``"sum" | "prod" | "max" | "min"`` and its map must not depend on reduction dims: the output
    element is the combination of the yields of all points that map to it, starting from the
    combiner's identity (0, 1, lowest, highest value of the accumulator dtype), so an empty
    reduction gives the identity. The accumulator dtype is the dtype of ``yields[k]``; without a
    ``finalize`` it must equal the output's dtype. ``finalize`` (an :class:`Epilogue`) maps the
    accumulators ``Acc(k)`` to the stored values (mean = ``div(Acc(0), Const(N))``, a cast from
    a wider accumulator, a fused elementwise consumer); its input maps range over the same
    iteration dims and must not depend on reduction dims.

How tensor-IR ops are expressed
    * elementwise ops, broadcasting, expand, transpose, slice, where/select, cast, constants
      splatted into a kernel: one parallel GenericKernel with suitable maps.
    * reductions (sum, prod, max, min; keepdims by a size-1 output dim mapped to constant 0),
      mean (sum + finalize): a GenericKernel with reduction iterators.
    * concat: one parallel kernel per operand, writing into an offset window of the output
      (output map constant = offset along the concat axis).
    * pad (constant): a kernel filling the whole output with ``Const(pad)`` (no inputs) followed
      by one copying the source into the interior window (two dispatches, barrier between).
    * reshape: a contiguous buffer reinterpreted; the compiler aliases it in buffer planning and
      no kernel ever sees it. A reshape that only splits dims of a value computed inside a
      kernel is instead a map: each old coordinate is an affine sum of its new coordinates.
    * matmul, conv2d, pooling, argmax/argmin, gather, softmax: the named kernels below, which a
      target may specialise; each (except ArgReduce) may carry an elementwise :class:`Epilogue`.

Scalar semantics (every target must follow them; vmvx is the reference)
    * Arithmetic ops take arguments of the op's dtype and produce it; casts are explicit.
    * Integer ``div`` truncates toward zero (C semantics); integer division by zero gives 0.
      Integer overflow wraps (two's complement). Integer ``pow`` with a negative exponent gives
      ``1/(x**-e)`` truncated: 1 for x == 1, +-1 for x == -1, else 0 (x == 0 included).
    * Reductions accumulate in the accumulator dtype in an unspecified order (float sums may
      differ from a sequential sum in the last bits); integer sums and products wrap.
    * ``cast`` float -> int truncates toward zero (out-of-range and NaN: unspecified value);
      int/float -> bool is ``x != 0``; bool -> number is 0/1.
    * ``cmp_*`` produce ``bool`` (1 byte, 0 or 1); ``and``/``or``/``not`` are logical on bool and
      bitwise on integers. ``max``/``min`` propagate NaN. ``round`` rounds half to even.
      ``sigmoid`` = 1/(1+exp(-x)), ``rsqrt`` = 1/sqrt(x), ``relu`` = max(x, 0),
      ``clip(x, lo, hi)`` = min(max(x, lo), hi), ``select(c, a, b)`` = c ? a : b.
    * float16 math may be evaluated in float32 and rounded to float16 once per op.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

#: Element types kernel IR knows (numpy dtype names) and their byte sizes.
DTYPES: dict[str, int] = {
    "bool": 1, "int8": 1, "uint8": 1, "int16": 2, "uint16": 2, "int32": 4, "uint32": 4,
    "int64": 8, "uint64": 8, "float16": 2, "float32": 4, "float64": 8,
}
FLOAT_DTYPES = frozenset({"float16", "float32", "float64"})
INT_DTYPES = frozenset({"int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"})

ITERATOR_TYPES = ("parallel", "reduction")
COMBINERS = ("sum", "prod", "max", "min")

#: Opcode -> number of arguments. Typing rules: see the module docstring and kernel_ir_validate.
OPCODES: dict[str, int] = {
    "add": 2, "sub": 2, "mul": 2, "div": 2, "pow": 2, "max": 2, "min": 2,
    "neg": 1, "abs": 1, "exp": 1, "log": 1, "sqrt": 1, "rsqrt": 1, "tanh": 1, "sigmoid": 1,
    "erf": 1, "relu": 1, "floor": 1, "ceil": 1, "round": 1, "cast": 1,
    "clip": 3,
    "cmp_eq": 2, "cmp_ne": 2, "cmp_lt": 2, "cmp_le": 2, "cmp_gt": 2, "cmp_ge": 2,
    "select": 3, "and": 2, "or": 2, "not": 1,
}
_FLOAT_ONLY = frozenset({"exp", "log", "sqrt", "rsqrt", "tanh", "sigmoid", "erf",
                         "floor", "ceil", "round"})
_NO_BOOL = frozenset({"add", "sub", "mul", "div", "pow", "neg", "abs", "relu", "clip"})
_LOGICAL = frozenset({"and", "or", "not"})


# ---------------------------------------------------------------------------------------------
# Operands and affine indexing


@dataclass(frozen=True)
class KernelOperand:
    """A dense row-major array in binding ``binding`` at ``byte_offset``.

    ``constant``: every dispatch of the kernel binds this operand's binding to a module
    constant, so its bytes are known at load and never change (GEMM/conv weights). A target
    may then declare a :class:`~hal_core.module.model.ConstantPack` for the binding: the runtime
    packs the constant into the target's own layout once per load, not on every call. All
    operands of one binding agree on the flag; a constant operand is never written.
    """

    binding: int
    shape: tuple[int, ...]
    dtype: str
    byte_offset: int = 0
    constant: bool = False

    @property
    def num_elements(self) -> int:
        return math.prod(self.shape)

    @property
    def byte_size(self) -> int:
        return self.num_elements * DTYPES[self.dtype]


@dataclass(frozen=True)
class AffineExpr:
    """``sum(coeffs[i] * p[i]) + constant`` over the iteration dims ``p``."""

    coeffs: tuple[int, ...]
    constant: int = 0

    @staticmethod
    def dim(d: int, num_dims: int, scale: int = 1, offset: int = 0) -> AffineExpr:
        return AffineExpr(tuple(scale if i == d else 0 for i in range(num_dims)), offset)

    @staticmethod
    def const(value: int, num_dims: int) -> AffineExpr:
        return AffineExpr((0,) * num_dims, value)

    def bounds(self, space: tuple[int, ...]) -> tuple[int, int]:
        """Smallest and largest value over the box ``space`` (assumed non-empty)."""
        lo = hi = self.constant
        for c, n in zip(self.coeffs, space):
            lo += min(0, c * (n - 1))
            hi += max(0, c * (n - 1))
        return lo, hi


@dataclass(frozen=True)
class IndexingMap:
    """Iteration point (``num_dims`` dims) -> operand element (one expr per operand dim)."""

    num_dims: int
    exprs: tuple[AffineExpr, ...]

    @staticmethod
    def identity(num_dims: int) -> IndexingMap:
        return IndexingMap(num_dims, tuple(AffineExpr.dim(d, num_dims) for d in range(num_dims)))

    @staticmethod
    def of_dims(num_dims: int, dims: tuple[int | None, ...]) -> IndexingMap:
        """Operand dim j reads iteration dim ``dims[j]``, or constant 0 where it is None."""
        return IndexingMap(num_dims, tuple(
            AffineExpr.const(0, num_dims) if d is None else AffineExpr.dim(d, num_dims)
            for d in dims))

    def depends_on(self, dim: int) -> bool:
        return any(e.coeffs[dim] != 0 for e in self.exprs)


@dataclass(frozen=True)
class MappedOperand:
    """An operand together with the map from the kernel's iteration space into it."""

    operand: KernelOperand
    map: IndexingMap


# ---------------------------------------------------------------------------------------------
# Scalar bodies (SSA)


@dataclass(frozen=True)
class Input:
    """The element of input ``index`` at the current point (through its indexing map)."""

    index: int


@dataclass(frozen=True)
class Result:
    """The value of ``body[index]`` (an earlier op of the same body)."""

    index: int


@dataclass(frozen=True)
class Const:
    value: int | float | bool
    dtype: str

    # 0.0 == -0.0 in Python, yet they are different constants (1/x tells them apart); bodies
    # are CSE'd and kernels deduplicated by equality, so the sign of zero takes part in it.
    def _key(self) -> tuple:
        return (self.dtype, self.value, math.copysign(1.0, self.value))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Const) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


@dataclass(frozen=True)
class IterIndex:
    """The current coordinate along iteration dim ``dim``, as int64."""

    dim: int


@dataclass(frozen=True)
class Acc:
    """In an Epilogue: the kernel's result ``index`` (named kernels have only Acc(0))."""

    index: int = 0


ValueRef = Input | Result | Const | IterIndex | Acc


@dataclass(frozen=True)
class ScalarOp:
    """``dtype`` is the result dtype; ``attrs`` is reserved for target hints (sorted pairs)."""

    opcode: str
    args: tuple[ValueRef, ...]
    dtype: str
    attrs: tuple[tuple[str, str | int | float], ...] = ()


@dataclass(frozen=True)
class Epilogue:
    """An elementwise computation applied to a kernel's results before they are stored.

    ``Acc(k)`` is result k (named kernels: ``Acc(0)``, in the kernel's accumulator dtype);
    ``Input(i)`` reads ``inputs[i]`` through a map over the epilogue's index space, and
    ``IterIndex(d)`` is the coordinate along its dim d. That index space is the output
    operand's dims for named kernels, and the kernel's iteration dims for
    GenericKernel.finalize (whose maps and IterIndex must not use reduction dims).
    ``yields`` gives one value per output, in the output's dtype.
    """

    body: tuple[ScalarOp, ...]
    yields: tuple[ValueRef, ...]
    inputs: tuple[MappedOperand, ...] = ()


# ---------------------------------------------------------------------------------------------
# Kernels


@dataclass(frozen=True)
class GenericKernel:
    name: str
    iteration_space: tuple[int, ...]
    iterator_types: tuple[str, ...]
    inputs: tuple[MappedOperand, ...]
    outputs: tuple[MappedOperand, ...]
    body: tuple[ScalarOp, ...]
    yields: tuple[ValueRef, ...]
    combiners: tuple[str | None, ...] = ()   # empty = all None (parallel-only kernels)
    finalize: Epilogue | None = None


@dataclass(frozen=True)
class MatmulKernel:
    """``out[..., m, n] = sum_k A[..., m, k] * B[..., k, n]``.

    ``lhs`` is ``(*batch, M, K)`` (``(*batch, K, M)`` if ``transpose_a``), ``rhs`` is
    ``(*batch, K, N)`` (``(*batch, N, K)`` if ``transpose_b``); batch dims broadcast numpy-style
    to ``out``'s ``(*batch, M, N)`` (missing leading dims count as 1; both operands have rank
    >= 2: the compiler reshapes vectors). Products and sums are computed in ``acc_dtype``
    (default: out's dtype) and cast to out's dtype after the epilogue, whose ``Acc(0)`` has
    ``acc_dtype``.
    """

    name: str
    lhs: KernelOperand
    rhs: KernelOperand
    out: KernelOperand
    transpose_a: bool = False
    transpose_b: bool = False
    acc_dtype: str | None = None
    epilogue: Epilogue | None = None

    @property
    def mnk(self) -> tuple[int, int, int]:
        m, k = self.lhs.shape[-2:][::-1] if self.transpose_a else self.lhs.shape[-2:]
        _, n = self.rhs.shape[-2:][::-1] if self.transpose_b else self.rhs.shape[-2:]
        return m, n, k


@dataclass(frozen=True)
class Conv2dKernel:
    """NCHW input, OIHW filter ``(O, C/groups, KH, KW)``, NCHW output, zero padding.

    ``padding`` is ``(top, left, bottom, right)``. ``out[n, o, y, x] = bias[o] + sum over
    c in o's group, ky, kx of in[n, c, y*sh + ky*dh - top, x*sw + kx*dw - left] * f[o, c', ky, kx]``
    with products and sums in ``acc_dtype`` (default out's dtype); ``bias`` is ``(O,)`` or None.
    """

    name: str
    input: KernelOperand
    filter: KernelOperand
    out: KernelOperand
    bias: KernelOperand | None = None
    strides: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    acc_dtype: str | None = None
    epilogue: Epilogue | None = None


@dataclass(frozen=True)
class Pool2dKernel:
    """Max or average pooling over NCHW; ``padding`` is ``(top, left, bottom, right)``.

    ``out``'s spatial shape is given (floor or ceil mode, decided by the compiler); windows may
    extend past the padded input in ceil mode. Max ignores positions outside the input. Average
    divides by the number of window positions inside the input, or with ``count_include_pad``
    inside the padded input (positions beyond the padding never count). Global pooling is a
    kernel of the input's spatial size. Integer average: computed in float64, then truncated.
    """

    name: str
    input: KernelOperand
    out: KernelOperand
    kind: str                      # "max" | "avg"
    kernel_size: tuple[int, int]
    strides: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    count_include_pad: bool = False
    epilogue: Epilogue | None = None


@dataclass(frozen=True)
class ArgReduceKernel:
    """Index of the first max (argmax) / min (argmin) along ``axis``, as numpy (NaN wins).

    ``out`` has the input's shape with ``axis`` removed or kept as 1; dtype int32 or int64.
    """

    name: str
    input: KernelOperand
    out: KernelOperand
    axis: int
    kind: str = "argmax"           # "argmax" | "argmin"


@dataclass(frozen=True)
class GatherKernel:
    """``out = numpy.take(data, indices, axis)``; out shape
    ``data.shape[:axis] + indices.shape + data.shape[axis+1:]``.

    Indices (any integer dtype) in ``[-n, n)`` follow numpy (negative counts from the end).
    Out-of-range indices are clamped: after adding n to negatives, to ``[0, n-1]``. Never an
    error, never out of bounds.
    """

    name: str
    data: KernelOperand
    indices: KernelOperand
    out: KernelOperand
    axis: int
    epilogue: Epilogue | None = None


@dataclass(frozen=True)
class SoftmaxKernel:
    """``exp(x - max) / sum(exp(x - max))`` along ``axis`` (log: ``x - max - log(sum)``)."""

    name: str
    input: KernelOperand
    out: KernelOperand
    axis: int
    log: bool = False
    epilogue: Epilogue | None = None


Kernel = (GenericKernel | MatmulKernel | Conv2dKernel | Pool2dKernel | ArgReduceKernel
          | GatherKernel | SoftmaxKernel)


@dataclass(frozen=True)
class KernelExecutable:
    """Kernels compiled together into one executable; kernel i is entry point i."""

    name: str
    kernels: tuple[Kernel, ...] = field(default=())


def kernel_operands(kernel: Kernel) -> tuple[tuple[KernelOperand, bool], ...]:
    """Every operand of ``kernel`` with whether it is written (epilogue inputs included)."""
    if isinstance(kernel, GenericKernel):
        ops = [(m.operand, False) for m in kernel.inputs] + [(m.operand, True)
                                                              for m in kernel.outputs]
        epi = kernel.finalize
    else:
        ins = {
            MatmulKernel: ("lhs", "rhs"), Conv2dKernel: ("input", "filter", "bias"),
            Pool2dKernel: ("input",), ArgReduceKernel: ("input",),
            GatherKernel: ("data", "indices"), SoftmaxKernel: ("input",),
        }[type(kernel)]
        ops = [(getattr(kernel, a), False) for a in ins if getattr(kernel, a) is not None]
        ops.append((kernel.out, True))
        epi = getattr(kernel, "epilogue", None)
    if epi is not None:
        ops += [(m.operand, False) for m in epi.inputs]
    return tuple(ops)


def replace_operands(kernel: Kernel, fn: Callable[[KernelOperand], KernelOperand]) -> Kernel:
    """``kernel`` with every operand (epilogue inputs included) replaced by ``fn(operand)``."""
    import dataclasses

    def mapped(ms: tuple[MappedOperand, ...]) -> tuple[MappedOperand, ...]:
        return tuple(MappedOperand(fn(m.operand), m.map) for m in ms)

    def epi(e: Epilogue | None) -> Epilogue | None:
        return None if e is None else dataclasses.replace(e, inputs=mapped(e.inputs))

    if isinstance(kernel, GenericKernel):
        return dataclasses.replace(kernel, inputs=mapped(kernel.inputs),
                                   outputs=mapped(kernel.outputs), finalize=epi(kernel.finalize))
    changes: dict = {}
    for f in dataclasses.fields(kernel):
        v = getattr(kernel, f.name)
        if isinstance(v, KernelOperand):
            changes[f.name] = fn(v)
        elif isinstance(v, Epilogue):
            changes[f.name] = epi(v)
    return dataclasses.replace(kernel, **changes)


def constant_bindings(kernel: Kernel) -> frozenset[int]:
    """Bindings of ``kernel`` whose operands are module constants (``constant=True``)."""
    return frozenset(op.binding for op, _ in kernel_operands(kernel) if op.constant)


def binding_count(kernel: Kernel) -> int:
    return 1 + max((op.binding for op, _ in kernel_operands(kernel)), default=-1)


from hal_core.compiler.kernel_ir_validate import validate, validate_executable

__all__ = [
    "COMBINERS",
    "DTYPES",
    "FLOAT_DTYPES",
    "INT_DTYPES",
    "ITERATOR_TYPES",
    "OPCODES",
    "Acc",
    "AffineExpr",
    "ArgReduceKernel",
    "Const",
    "Conv2dKernel",
    "Epilogue",
    "GatherKernel",
    "GenericKernel",
    "IndexingMap",
    "Input",
    "IterIndex",
    "Kernel",
    "KernelExecutable",
    "KernelOperand",
    "MappedOperand",
    "MatmulKernel",
    "Pool2dKernel",
    "Result",
    "ScalarOp",
    "SoftmaxKernel",
    "ValueRef",
    "binding_count",
    "constant_bindings",
    "replace_operands",
    "kernel_operands",
    "validate",
    "validate_executable",
]
