"""Generic kernels' loop forms: reductions whose innermost dim is parallel (the strip form,
rows combined four at a time) and whose innermost dim is reduced, with remainders, several
reduction dims, a finalize and integer accumulators, under several tilings."""

from __future__ import annotations

import numpy as np
import pytest
from llvm_harness import TILINGS, operand, run

from hal_core.compiler import kernel_ir as K


def _reduce(shape, axes, dtype, combiner, mean=False):
    nd = len(shape)
    types = tuple("reduction" if d in axes else "parallel" for d in range(nd))
    out_shape = tuple(n for d, n in enumerate(shape) if d not in axes)
    x, y = operand(0, shape, dtype), operand(1, out_shape, dtype)
    out_map = K.IndexingMap.of_dims(nd, tuple(d for d in range(nd) if d not in axes))
    finalize = None
    if mean:
        count = int(np.prod([shape[a] for a in axes]))
        finalize = K.Epilogue(body=(K.ScalarOp("div", (K.Acc(0), K.Const(float(count), dtype)),
                                               dtype),), yields=(K.Result(0),))
    return K.GenericKernel("r", tuple(shape), types,
                           (K.MappedOperand(x, K.IndexingMap.identity(nd)),),
                           (K.MappedOperand(y, out_map),), (), (K.Input(0),), (combiner,),
                           finalize), out_shape


@pytest.mark.parametrize("shape,axes", [((7, 130), (0,)), ((9, 5, 70), (0, 1)),
                                        ((6, 3, 33), (0,)), ((5, 7, 9), (0, 2)),
                                        ((2, 11, 3), (1,)), ((13, 1029), (0,))])
@pytest.mark.parametrize("dtype,combiner", [("float32", "sum"), ("float32", "max"),
                                            ("int32", "sum"), ("int16", "prod"),
                                            ("float64", "min")])
def test_reductions_match_numpy(shape, axes, dtype, combiner):
    g = np.random.default_rng(0)
    x = (g.integers(-3, 4, shape) if dtype.startswith("int") else g.normal(size=shape)
         ).astype(dtype)
    kern, out_shape = _reduce(shape, axes, dtype, combiner)
    ref = {"sum": np.sum, "max": np.max, "min": np.min, "prod": np.prod}[combiner]
    want = ref(x, axis=axes).astype(dtype)
    for tiling in TILINGS:
        got = run(kern, {0: x}, {1: (out_shape, dtype)}, tiling)[1]
        if dtype.startswith("float"):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=tiling)
        else:
            np.testing.assert_array_equal(got, want, err_msg=tiling)


def test_mean_over_an_outer_axis_uses_the_finalize():
    x = np.random.default_rng(1).normal(size=(10, 4, 67)).astype(np.float32)
    kern, out_shape = _reduce(x.shape, (0, 1), "float32", "sum", mean=True)
    for tiling in TILINGS:
        got = run(kern, {0: x}, {1: (out_shape, "float32")}, tiling)[1]
        np.testing.assert_allclose(got, x.mean(axis=(0, 1)), rtol=1e-5, atol=1e-6)
