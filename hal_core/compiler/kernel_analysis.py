"""Kernel-IR analyses that every target needs: strides, dim collapsing, the tile axis.

A target lowers a kernel to loops (native code), numpy views (vmvx) or invocations (SPIR-V).
Each one first asks the same questions, answered here once:

* **Where does an operand's element live?** :func:`map_strides` turns an operand's affine
  indexing map into a base offset plus one stride per iteration dim (zero for a broadcast dim,
  negative for a reversed slice). ``unit="bytes"`` (default) or ``"elements"``.
* **Which loops are really needed?** :func:`collapse` orders a generic kernel's iteration dims
  (parallel first, then reduction), drops size-1 dims and merges adjacent dims of the same
  kind that every operand walks contiguously, so an elementwise kernel over a dense tensor
  becomes one loop. The result, a :class:`LoopNest`, lists the loops outermost first with each
  operand's offset and strides per loop.
* **Which loop do workgroups split?** :attr:`LoopNest.tile_axis` for generic kernels (the
  outermost parallel loop; -1 when there is none) and :func:`named_tiling` for the named
  kernels (the output dim split across workgroups and the dim of each input that follows it).

How many workgroups to use, chunk sizes and vector widths stay target decisions.

Example (a target's lowering of a generic kernel)::

    nest = collapse(kernel)                 # loops, outermost first
    for loop, (size, kind) in enumerate(zip(nest.sizes, nest.kinds)): ...
    acc = nest.operands[i]                  # inputs, then outputs, then finalize inputs
    addr = base[acc.binding] + acc.offset + sum(p[l] * acc.strides[l] for l in loops)
    tile = nest.tile_axis                   # split this loop across workgroups (or -1)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from hal_core.compiler import kernel_ir as K

__all__ = [
    "LoopNest",
    "NamedTiling",
    "OperandAccess",
    "collapse",
    "dense_strides",
    "generic_operands",
    "iter_dims_used",
    "map_strides",
    "named_tiling",
]


def dense_strides(shape: Sequence[int], itemsize: int = 1) -> tuple[int, ...]:
    """Row-major strides of ``shape``, in units of ``itemsize`` (1: elements)."""
    out, acc = [], itemsize
    for n in reversed(shape):
        out.append(acc)
        acc *= max(n, 1)
    return tuple(reversed(out))


def map_strides(m: K.MappedOperand, unit: str = "bytes") -> tuple[int, list[int]]:
    """Offset of iteration point 0 and the stride per iteration dim of a mapped operand.

    With ``unit="bytes"`` the offset includes the operand's ``byte_offset`` into its binding;
    with ``unit="elements"`` offset and strides count elements of the operand's dtype (the
    operand's ``byte_offset`` must then be a multiple of its element size, which the compiler
    guarantees).
    """
    op = m.operand
    isz = K.DTYPES[op.dtype]
    if unit not in ("bytes", "elements"):
        raise ValueError(f"unit must be 'bytes' or 'elements', got {unit!r}")
    scale = isz if unit == "bytes" else 1
    st = dense_strides(op.shape, scale)
    base = op.byte_offset if unit == "bytes" else op.byte_offset // isz
    offset = base + sum(s * e.constant for s, e in zip(st, m.map.exprs))
    strides = [sum(s * e.coeffs[i] for s, e in zip(st, m.map.exprs))
               for i in range(m.map.num_dims)]
    return offset, strides


def generic_operands(k: K.GenericKernel) -> tuple[K.MappedOperand, ...]:
    """A generic kernel's mapped operands in :class:`LoopNest` order: inputs, outputs, then
    the finalize epilogue's inputs."""
    fin = k.finalize.inputs if k.finalize else ()
    return tuple(k.inputs) + tuple(k.outputs) + tuple(fin)


def iter_dims_used(k: K.GenericKernel) -> set[int]:
    """Iteration dims whose coordinate the body reads (``IterIndex``): they cannot be merged
    with a neighbour or dropped, since the body needs their own coordinate."""
    bodies = list(k.body) + (list(k.finalize.body) if k.finalize else [])
    refs: list = [a for op in bodies for a in op.args] + list(k.yields)
    refs += list(k.finalize.yields) if k.finalize else []
    return {a.dim for a in refs if isinstance(a, K.IterIndex)}


@dataclass(frozen=True)
class OperandAccess:
    """How one operand is walked by a :class:`LoopNest`: ``binding``, ``dtype``, the offset of
    the nest's point 0 and one stride per loop (units as asked of :func:`collapse`)."""

    binding: int
    dtype: str
    offset: int
    strides: tuple[int, ...]


@dataclass(frozen=True)
class LoopNest:
    """A generic kernel's iteration space after :func:`collapse`.

    ``dims[l]`` are the kernel's iteration dims merged into loop ``l`` (outermost first; within
    a loop, the first dim is the slowest), ``sizes[l]`` its trip count and ``kinds[l]``
    ``"parallel"`` or ``"reduction"``; parallel loops come first unless :func:`collapse` was
    asked for ``reduction_first`` (``num_parallel`` counts them either way).
    ``operands`` follows :func:`generic_operands`. ``empty`` is True when a parallel dim has
    size 0 (the kernel writes nothing; a reduction over zero elements still writes the
    identity). Size-1 dims not read by ``IterIndex`` appear in no loop.
    """

    dims: tuple[tuple[int, ...], ...]
    sizes: tuple[int, ...]
    kinds: tuple[str, ...]
    num_parallel: int
    operands: tuple[OperandAccess, ...]
    empty: bool = False

    @property
    def parallel_loops(self) -> tuple[int, ...]:
        return tuple(i for i, t in enumerate(self.kinds) if t == "parallel")

    @property
    def reduction_loops(self) -> tuple[int, ...]:
        return tuple(i for i, t in enumerate(self.kinds) if t == "reduction")

    @property
    def tile_axis(self) -> int:
        """The loop workgroups split: loop 0 when it is parallel, else -1 (no parallel loop, or
        reduction-first order: workgroups would share outputs)."""
        return 0 if self.kinds and self.kinds[0] == "parallel" else -1

    def loop_of(self, dim: int) -> int | None:
        """The loop holding iteration dim ``dim`` (None for a dropped size-1 dim)."""
        for i, g in enumerate(self.dims):
            if dim in g:
                return i
        return None


def collapse(k: K.GenericKernel, unit: str = "bytes", keep: Iterable[int] = (),
             reduction_first: bool = False) -> LoopNest:
    """The loops a generic kernel needs (see the module docstring and :class:`LoopNest`).

    Iteration dims in ``keep`` (and those the body reads with ``IterIndex``) are never merged
    or dropped. Dims are merged when every operand's stride on the outer dim equals its stride
    on the inner dim times the inner dim's size, so one running index walks both. Loops are
    parallel then reduction, or with ``reduction_first`` reduction then parallel (a target's
    choice: e.g. a sum over axis 0 of a row-major matrix reads whole rows that way).
    """
    nd = len(k.iteration_space)
    par = [d for d in range(nd) if k.iterator_types[d] == "parallel"]
    red = [d for d in range(nd) if k.iterator_types[d] == "reduction"]
    mapped = generic_operands(k)
    geo = [map_strides(m, unit) for m in mapped]
    pinned = iter_dims_used(k) | set(keep)
    groups: list[list[int]] = []
    for d in (red + par if reduction_first else par + red):
        n = k.iteration_space[d]
        if n == 1 and d not in pinned:
            continue
        if groups and d not in pinned and groups[-1][-1] not in pinned:
            prev = groups[-1][-1]
            if k.iterator_types[prev] == k.iterator_types[d] and \
                    all(s[prev] == s[d] * n for _, s in geo):
                groups[-1].append(d)
                continue
        groups.append([d])
    sizes = tuple(math.prod(k.iteration_space[d] for d in g) for g in groups)
    kinds = tuple(k.iterator_types[g[0]] for g in groups)
    operands = tuple(
        OperandAccess(m.operand.binding, m.operand.dtype, off, tuple(s[g[-1]] for g in groups))
        for m, (off, s) in zip(mapped, geo))
    return LoopNest(tuple(tuple(g) for g in groups), sizes, kinds,
                    sum(1 for t in kinds if t == "parallel"), operands,
                    any(k.iteration_space[d] == 0 for d in par))


# ---------------------------------------------------------------------------------------------
# Named kernels


@dataclass(frozen=True)
class NamedTiling:
    """How workgroups split a named kernel.

    ``rows`` is the trip count of the tile axis (split into contiguous blocks of rows, one
    block per workgroup). ``axes`` maps an operand role (``"out"``, ``"lhs"``, ``"input"``,
    ...; the kernel's field names) to the dim of that operand that follows the tile axis, or
    -1 when the operand is read whole by every workgroup. ``rows == 1`` with every axis -1
    means the kernel is not split. ``work`` estimates the scalar multiply-adds (or element
    visits) of the whole kernel, for choosing a workgroup count.
    """

    rows: int
    axes: dict[str, int]
    work: int

    def axis(self, role: str) -> int:
        return self.axes.get(role, -1)


def named_tiling(k: K.Kernel) -> NamedTiling:
    """The tile axis of a named kernel (rows of the output that workgroups can split without
    sharing any output element): matmul M, conv/pool output rows, the first non-reduced dim
    of argmax/softmax, gather's leading dim."""
    if isinstance(k, K.MatmulKernel):
        m, _, kk = k.mnk
        rank = len(k.out.shape)
        lhs_axis = len(k.lhs.shape) - (1 if k.transpose_a else 2)
        return NamedTiling(m, {"out": rank - 2, "lhs": lhs_axis},
                           k.out.num_elements * max(kk, 1))
    if isinstance(k, K.Conv2dKernel):
        return NamedTiling(k.out.shape[2], {"out": 2},
                           k.out.num_elements * math.prod(k.filter.shape[1:]))
    if isinstance(k, K.Pool2dKernel):
        return NamedTiling(k.out.shape[2], {"out": 2},
                           k.out.num_elements * math.prod(k.kernel_size))
    if isinstance(k, K.ArgReduceKernel):
        tile = 0 if k.axis != 0 else -1
        return NamedTiling(k.input.shape[0] if tile == 0 else 1, {"input": tile, "out": tile},
                           k.input.num_elements)
    if isinstance(k, K.GatherKernel):
        if k.axis > 0:
            data, idx = 0, -1
        elif len(k.indices.shape) > 0:
            data, idx = -1, 0
        else:
            data, idx = -1, -1
        tile = 0 if (data, idx) != (-1, -1) else -1
        return NamedTiling(k.out.shape[0] if tile == 0 else 1,
                           {"data": data, "indices": idx, "out": tile}, k.out.num_elements)
    if isinstance(k, K.SoftmaxKernel):
        shape = k.input.shape
        tile = next((d for d in range(len(shape)) if d != k.axis), -1)
        return NamedTiling(shape[tile] if tile >= 0 else 1, {"input": tile, "out": tile},
                           k.input.num_elements)
    raise TypeError(f"named_tiling takes a named kernel, got {type(k).__name__}")
