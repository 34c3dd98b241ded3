"""Lowering helpers shared by every kernel: kernel IR pieces -> ``example-program`` pieces.

* :func:`access` folds an operand's affine indexing map and its row-major layout into an
  access descriptor (a byte offset and a byte stride per iteration dim), which is what the
  device's address generator consumes;
* :func:`lower` turns a GenericKernel into one stage;
* :func:`tiled` chooses the workgroups: one dim, parallel and of one extent in every stage, is
  split so that a workgroup's temporaries stay within :data:`TILE_ELEMENTS` elements;
* :func:`epilogue_code` splices a named kernel's epilogue into a stage's code.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from hal_core.compiler import kernel_ir as K
from hal_example.program import Access, Body, ProgramKernel, Stage

#: Upper bound on the iteration points one workgroup evaluates at once.
TILE_ELEMENTS = 1 << 18


def access(mapped: K.MappedOperand) -> Access:
    """Fold ``mapped``'s indexing map and row-major layout into byte offset and strides."""
    op = mapped.operand
    size = K.DTYPES[op.dtype]
    row = [math.prod(op.shape[j + 1:]) for j in range(len(op.shape))]
    offset = op.byte_offset + size * sum(r * e.constant for r, e in zip(row, mapped.map.exprs))
    strides = tuple(size * sum(r * e.coeffs[d] for r, e in zip(row, mapped.map.exprs))
                    for d in range(mapped.map.num_dims))
    return Access(op.binding, op.dtype, offset, strides)


def ref(ref: K.ValueRef) -> tuple:
    if isinstance(ref, K.Input):
        return ("in", ref.index)
    if isinstance(ref, K.Result):
        return ("val", ref.index)
    if isinstance(ref, K.IterIndex):
        return ("idx", ref.dim)
    if isinstance(ref, K.Acc):
        return ("acc", ref.index)
    value = ref.value
    return ("const", int(value) if isinstance(value, bool) else value, ref.dtype)


def code(body: tuple[K.ScalarOp, ...]) -> tuple[tuple, ...]:
    return tuple((op.opcode, op.dtype, *(ref(a) for a in op.args)) for op in body)


def lower(k: K.GenericKernel) -> Stage:
    """One GenericKernel as one stage."""
    reduce = tuple(d for d, t in enumerate(k.iterator_types) if t == "reduction")
    mapped = [*k.inputs, *k.outputs, *(k.finalize.inputs if k.finalize else ())]
    n_in, n_out = len(k.inputs), len(k.outputs)
    body = Body(tuple(range(n_in)), code(k.body), tuple(ref(y) for y in k.yields))
    final = None
    if k.finalize is not None:
        final = Body(tuple(range(n_in + n_out, len(mapped))), code(k.finalize.body),
                     tuple(ref(y) for y in k.finalize.yields))
    combiners = tuple(k.combiners) if reduce else (None,) * n_out
    return Stage(tuple(k.iteration_space), reduce, tuple(access(m) for m in mapped),
                 tuple(range(n_in, n_in + n_out)), body, combiners, final)


def tiled(name: str, stages: tuple[Stage, ...], scratch: tuple[int, ...] = (),
          dims: tuple[int, ...] | None = None) -> ProgramKernel:
    """The kernel of ``stages``, split into workgroups along a dim parallel in all of them.

    ``dims`` limits the candidates to dims that mean the same in every stage (a workgroup's
    later stages must read only what its earlier stages wrote).
    """
    space = stages[0].space
    parallel = [d for d in (range(len(space)) if dims is None else dims)
                if all(d < len(st.space) and d not in st.reduce and st.space[d] == space[d]
                       for st in stages)]
    tile_dim = next((d for d in parallel if space[d] > 1), parallel[0] if parallel else None)
    tile = 1
    if tile_dim is not None:
        per_point = max(max(1, math.prod(n for d, n in enumerate(st.space) if d != tile_dim))
                        for st in stages)
        tile = max(1, min(space[tile_dim], TILE_ELEMENTS // per_point))
    return ProgramKernel(name, tile_dim, tile, scratch, stages)


def dtype_of(r: K.ValueRef, body: tuple[K.ScalarOp, ...], inputs: tuple[K.MappedOperand, ...],
             acc: str) -> str:
    """The dtype of value ``r`` of a body (``acc``: the dtype of ``Acc``)."""
    if isinstance(r, K.Result):
        return body[r.index].dtype
    if isinstance(r, K.Input):
        return inputs[r.index].operand.dtype
    if isinstance(r, K.Const):
        return r.dtype
    if isinstance(r, K.Acc):
        return acc
    return "int64"  # IterIndex


def epilogue_code(epi: K.Epilogue, out: list[tuple], acc: tuple, first_input: int,
                  out_dtype: str, index: Callable[[int], tuple] = lambda d: ("idx", d)) -> tuple:
    """Append ``epi``'s body to the code ``out``; return the ref of its yield, in ``out_dtype``.

    ``Acc(0)`` becomes ``acc``, ``Input(i)`` becomes ``["in", first_input + i]`` and
    ``IterIndex(d)`` becomes ``index(d)`` (for kernels whose iteration dims are not the output's).
    """
    base = len(out)

    def moved(r: K.ValueRef) -> tuple:
        if isinstance(r, K.Acc):
            return acc
        if isinstance(r, K.Input):
            return ("in", first_input + r.index)
        if isinstance(r, K.Result):
            return ("val", base + r.index)
        if isinstance(r, K.IterIndex):
            return index(r.dim)
        return ref(r)

    out += [(op.opcode, op.dtype, *(moved(a) for a in op.args)) for op in epi.body]
    y = epi.yields[0]
    if dtype_of(y, epi.body, epi.inputs, out_dtype) != out_dtype:
        out.append(("cast", out_dtype, moved(y)))
        return ("val", len(out) - 1)
    return moved(y)
