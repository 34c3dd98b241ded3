"""kernel_analysis: strides of indexing maps, dim collapsing and tile axes, checked against
numpy's own strides and against brute-force enumeration of the iteration space."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hal_core.compiler import kernel_ir as K
from hal_core.compiler.kernel_analysis import (
    collapse,
    dense_strides,
    map_strides,
    named_tiling,
)

F = "float32"


def op(binding, shape, dtype=F, offset=0):
    return K.KernelOperand(binding, tuple(shape), dtype, offset)


def mapped(operand, exprs, nd):
    return K.MappedOperand(operand, K.IndexingMap(nd, tuple(exprs)))


def copy_kernel(space, types, inputs, outputs, finalize=None, body=None, combiners=()):
    body = body or (K.ScalarOp("add", (K.Input(0), K.Const(0.0, F)), F),)
    return K.GenericKernel("k", tuple(space), tuple(types), tuple(inputs), tuple(outputs),
                           body, (K.Result(0),), combiners, finalize)


def test_dense_strides_match_numpy():
    for shape in [(2, 3, 4), (5,), (), (3, 0, 2), (1, 7)]:
        a = np.empty(shape, np.float64)
        if 0 not in shape:
            assert dense_strides(shape, 8) == a.strides
        assert dense_strides(shape) == tuple(s // 8 for s in dense_strides(shape, 8))


def _element_offsets(m: K.MappedOperand, space):
    """Brute force: the flat element index every iteration point reads."""
    st = dense_strides(m.operand.shape)
    out = []
    for p in itertools.product(*map(range, space)):
        idx = [sum(c * x for c, x in zip(e.coeffs, p)) + e.constant for e in m.map.exprs]
        out.append(sum(i * s for i, s in zip(idx, st)))
    return out


@pytest.mark.parametrize("exprs", [
    # transpose of a 3x4 over a (4, 3) space
    [K.AffineExpr((0, 1)), K.AffineExpr((1, 0))],
    # reversed slice with offset: rows 2, 1, 0 (coeff -1, start 2); broadcast over dim 1
    [K.AffineExpr((-1, 0), 2), K.AffineExpr((0, 0), 1)],
    # stepped slice: every second column starting at 1
    [K.AffineExpr((1, 0)), K.AffineExpr((0, 2), 1)],
])
def test_map_strides_agree_with_enumeration(exprs):
    m = mapped(op(0, (3, 4), F, offset=64), exprs, 2)
    space = (3, 2) if exprs[1].coeffs == (0, 2) else ((4, 3) if exprs[0].coeffs == (0, 1)
                                                       else (3, 2))
    for unit, scale, base in (("elements", 1, 16), ("bytes", 4, 64)):
        off, strides = map_strides(m, unit)
        got = [off + sum(s * x for s, x in zip(strides, p))
               for p in itertools.product(*map(range, space))]
        assert got == [base + scale * e for e in _element_offsets(m, space)]


def test_collapse_merges_a_dense_elementwise_kernel_into_one_loop():
    x, y = op(0, (2, 3, 4)), op(1, (2, 3, 4))
    ident = K.IndexingMap.identity(3)
    k = copy_kernel((2, 3, 4), ["parallel"] * 3, [K.MappedOperand(x, ident)],
                    [K.MappedOperand(y, ident)])
    nest = collapse(k)
    assert nest.sizes == (24,) and nest.dims == ((0, 1, 2),) and nest.tile_axis == 0
    assert [a.strides for a in nest.operands] == [(4,), (4,)]
    assert collapse(k, unit="elements").operands[0].strides == (1,)


def test_collapse_keeps_transposed_and_indexed_dims_apart():
    x, y = op(0, (4, 3)), op(1, (3, 4))
    k = copy_kernel((3, 4), ["parallel"] * 2,
                    [mapped(x, [K.AffineExpr((0, 1)), K.AffineExpr((1, 0))], 2)],
                    [K.MappedOperand(y, K.IndexingMap.identity(2))])
    nest = collapse(k)
    assert nest.sizes == (3, 4) and nest.operands[0].strides == (4, 12)
    # IterIndex pins a dim even where the operands are contiguous across it
    k2 = copy_kernel((2, 3), ["parallel"] * 2, [K.MappedOperand(op(0, (2, 3)),
                                                              K.IndexingMap.identity(2))],
                     [K.MappedOperand(op(1, (2, 3)), K.IndexingMap.identity(2))],
                     body=(K.ScalarOp("cast", (K.IterIndex(1),), F),))
    assert collapse(k2).sizes == (2, 3)
    assert collapse(k, keep=()).loop_of(0) == 0


def test_collapse_orders_parallel_before_reduction_and_drops_unit_dims():
    # sum over dim 0 of a (5, 1, 6) tensor into (1, 6): loops [6 parallel], [5 reduction]
    x, y = op(0, (5, 1, 6)), op(1, (1, 6))
    out_map = [K.AffineExpr((0, 0, 0)), K.AffineExpr((0, 0, 1))]
    k = copy_kernel((5, 1, 6), ["reduction", "parallel", "parallel"],
                    [K.MappedOperand(x, K.IndexingMap.identity(3))], [mapped(y, out_map, 3)],
                    combiners=("sum",))
    nest = collapse(k)
    assert nest.kinds == ("parallel", "reduction") and nest.sizes == (6, 5)
    assert nest.dims == ((2,), (0,)) and nest.reduction_loops == (1,)
    assert nest.loop_of(1) is None and nest.operands[1].strides == (4, 0)
    assert not nest.empty


def test_collapse_flags_empty_parallel_space_and_full_reduction_has_no_tile():
    x, y = op(0, (0, 3)), op(1, (0, 3))
    ident = K.IndexingMap.identity(2)
    k = copy_kernel((0, 3), ["parallel"] * 2, [K.MappedOperand(x, ident)],
                    [K.MappedOperand(y, ident)])
    assert collapse(k).empty
    full = copy_kernel((7,), ["reduction"], [K.MappedOperand(op(0, (7,)),
                                                             K.IndexingMap.identity(1))],
                       [mapped(op(1, ()), [], 1)], combiners=("max",))
    nest = collapse(full)
    assert nest.tile_axis == -1 and nest.num_parallel == 0 and nest.sizes == (7,)


def test_named_tiling():
    mm = K.MatmulKernel("mm", op(0, (2, 8, 5)), op(1, (5, 3)), op(2, (2, 8, 3)))
    t = named_tiling(mm)
    assert (t.rows, t.axis("out"), t.axis("lhs"), t.axis("rhs")) == (8, 1, 1, -1)
    assert t.work == 2 * 8 * 3 * 5
    mt = K.MatmulKernel("mm", op(0, (5, 8)), op(1, (5, 3)), op(2, (8, 3)), transpose_a=True)
    assert named_tiling(mt).axis("lhs") == 1
    sm = K.SoftmaxKernel("s", op(0, (4, 6)), op(1, (4, 6)), axis=0)
    assert (named_tiling(sm).rows, named_tiling(sm).axis("input")) == (6, 1)
    am = K.ArgReduceKernel("a", op(0, (4, 6)), op(1, (6,), "int64"), axis=0)
    assert named_tiling(am).rows == 1 and named_tiling(am).axis("out") == -1
    g = K.GatherKernel("g", op(0, (10, 4)), op(1, (3,), "int32"), op(2, (3, 4)), axis=0)
    assert named_tiling(g).axes == {"data": -1, "indices": 0, "out": 0}
    conv = K.Conv2dKernel("c", op(0, (1, 2, 5, 5)), op(1, (3, 2, 3, 3)), op(2, (1, 3, 3, 3)))
    assert named_tiling(conv).rows == 3 and named_tiling(conv).axis("out") == 2
    with pytest.raises(TypeError):
        named_tiling(copy_kernel((1,), ["parallel"], [], [mapped(op(0, (1,)),
                                                                 [K.AffineExpr((1,))], 1)]))


def test_collapse_reduction_first_puts_reduction_loops_outside():
    x, y = op(0, (5, 6)), op(1, (6,))
    k = copy_kernel((5, 6), ["reduction", "parallel"],
                    [K.MappedOperand(x, K.IndexingMap.identity(2))],
                    [mapped(y, [K.AffineExpr((0, 1))], 2)], combiners=("sum",))
    nest = collapse(k, reduction_first=True)
    assert nest.kinds == ("reduction", "parallel") and nest.sizes == (5, 6)
    assert nest.parallel_loops == (1,) and nest.reduction_loops == (0,)
    assert nest.tile_axis == -1 and nest.operands[0].strides == (24, 4)
    assert collapse(k).tile_axis == 0
