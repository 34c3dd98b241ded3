"""float32 pooling vectorised over output columns: window sizes, strides (plain, wide-load
and gather), padding, ceil-mode windows past the input, count_include_pad, NaN and a fused
epilogue, against a numpy reference."""

from __future__ import annotations

import platform

import numpy as np
import pytest
from hal_llvm_cpu import pool
from llvm_harness import TILINGS, operand, run

from hal_core.compiler import kernel_ir as K


def _ref(x, kind, ksize, strides, padding, out_hw, include_pad):
    n, c, h, w = x.shape
    top, left, bottom, right = padding
    out = np.zeros((n, c) + out_hw)
    for oy in range(out_hw[0]):
        for ox in range(out_hw[1]):
            y0, x0 = oy * strides[0] - top, ox * strides[1] - left
            ys = slice(max(y0, 0), min(y0 + ksize[0], h))
            xs = slice(max(x0, 0), min(x0 + ksize[1], w))
            win = x[:, :, ys, xs].astype(np.float64)
            if kind == "max":
                out[:, :, oy, ox] = win.max(axis=(2, 3), initial=-np.inf)
                nan = np.isnan(win).any(axis=(2, 3))
                out[:, :, oy, ox][nan] = np.nan
            else:
                if include_pad:
                    hh = min(y0 + ksize[0], h + bottom) - max(y0, -top)
                    ww = min(x0 + ksize[1], w + right) - max(x0, -left)
                    count = max(hh, 0) * max(ww, 0)
                else:
                    count = win.shape[2] * win.shape[3]
                with np.errstate(invalid="ignore", divide="ignore"):
                    out[:, :, oy, ox] = win.sum(axis=(2, 3)) / count
    return out


@pytest.mark.parametrize("case", [
    # (h, w, ksize, strides, padding, out_hw)
    (23, 19, (3, 3), (2, 2), (1, 1, 1, 1), (12, 10)),     # ResNet's max pool
    (23, 19, (3, 3), (1, 1), (1, 1, 1, 1), (23, 19)),
    (9, 40, (2, 2), (2, 2), (0, 0, 0, 0), (5, 20)),       # ceil mode: last window past h
    (12, 50, (5, 3), (3, 3), (2, 1, 2, 1), (4, 17)),
    (10, 70, (3, 3), (5, 5), (1, 1, 1, 1), (3, 15)),      # stride past the wide loads
    (7, 35, (7, 4), (1, 4), (3, 0, 3, 0), (7, 8)),
])
@pytest.mark.parametrize("kind,include_pad", [("max", False), ("avg", False), ("avg", True)])
def test_pool_windows(case, kind, include_pad):
    h, w, ksize, strides, padding, out_hw = case
    x = np.random.default_rng(0).standard_normal((2, 3, h, w)).astype(np.float32)
    x[0, 1, 3, 4] = np.nan
    kern = K.Pool2dKernel("pool", operand(0, x.shape, "float32"),
                          operand(1, (2, 3) + out_hw, "float32"), kind, ksize, strides,
                          padding, include_pad)
    assert pool.applies(kern)
    want = _ref(x, kind, ksize, strides, padding, out_hw, include_pad)
    for tiling in TILINGS:
        got = run(kern, {0: x}, {1: ((2, 3) + out_hw, "float32")}, tiling)[1]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=tiling)


def test_pool_epilogue_reads_an_operand_at_output_coordinates():
    x = np.random.default_rng(0).standard_normal((1, 4, 30, 30)).astype(np.float32)
    res = np.random.default_rng(1).standard_normal((1, 4, 15, 15)).astype(np.float32)
    epi = K.Epilogue(
        body=(K.ScalarOp("add", (K.Acc(0), K.Input(0)), "float32"),
              K.ScalarOp("relu", (K.Result(0),), "float32")),
        yields=(K.Result(1),),
        inputs=(K.MappedOperand(operand(2, res.shape, "float32"), K.IndexingMap.identity(4)),))
    kern = K.Pool2dKernel("pool", operand(0, x.shape, "float32"),
                          operand(1, res.shape, "float32"), "max", (3, 3), (2, 2),
                          (1, 1, 1, 1), epilogue=epi)
    assert pool.applies(kern)
    want = np.maximum(_ref(x, "max", (3, 3), (2, 2), (1, 1, 1, 1), (15, 15), False) + res, 0)
    got = run(kern, {0: x, 2: res}, {1: (res.shape, "float32")}, "split")[1]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_narrow_outputs_and_other_dtypes_keep_the_scalar_lowering():
    glob = K.Pool2dKernel("gap", operand(0, (1, 8, 7, 7), "float32"),
                          operand(1, (1, 8, 1, 1), "float32"), "avg", (7, 7))
    f64 = K.Pool2dKernel("p", operand(0, (1, 2, 8, 8), "float64"),
                         operand(1, (1, 2, 8, 8), "float64"), "max", (1, 1))
    assert not pool.applies(glob) and not pool.applies(f64)


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86 CPU names")
@pytest.mark.parametrize("cpu", ["x86-64-v3", "generic"])
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_narrower_vectors(cpu, kind):
    x = np.random.default_rng(0).standard_normal((1, 2, 23, 19)).astype(np.float32)
    kern = K.Pool2dKernel("pool", operand(0, x.shape, "float32"),
                          operand(1, (1, 2, 12, 10), "float32"), kind, (3, 3), (2, 2),
                          (1, 1, 1, 1))
    want = _ref(x, kind, (3, 3), (2, 2), (1, 1, 1, 1), (12, 10), False)
    got = run(kern, {0: x}, {1: ((1, 2, 12, 10), "float32")}, "split", **{"target-cpu": cpu})[1]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
