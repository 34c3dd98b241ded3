"""Matmuls with few rows of A (the GEMV path): every transpose, remainders of the column and
row blocks and of k, broadcast batch dims and a fused epilogue, against numpy."""

from __future__ import annotations

import platform

import numpy as np
import pytest
from hal_llvm_cpu import gemv
from llvm_harness import TILINGS, operand, run

from hal_core.compiler import kernel_ir as K


def _data(shape, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)


@pytest.mark.parametrize("m", [1, 2, 4])
@pytest.mark.parametrize("n,k", [(1, 1), (7, 5), (130, 33), (1000, 300), (17, 0)])
@pytest.mark.parametrize("ta,tb", [(False, False), (False, True), (True, False), (True, True)])
def test_gemv_shapes_and_transposes(m, n, k, ta, tb):
    a = _data((k, m) if ta else (m, k), 1)
    b = _data((n, k) if tb else (k, n), 2)
    kern = K.MatmulKernel("mv", operand(0, a.shape, "float32"), operand(1, b.shape, "float32"),
                          operand(2, (m, n), "float32"), ta, tb)
    # A transposed is strided along k unless it has one row: those keep the tiled kernel
    assert gemv.applies(kern) == (m == 1 or not ta)
    want = (a.T if ta else a).astype(np.float64) @ (b.T if tb else b).astype(np.float64)
    for tiling in TILINGS:
        got = run(kern, {0: a, 1: b}, {2: ((m, n), "float32")}, tiling)[2]
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4, err_msg=tiling)


def test_five_rows_take_the_tiled_kernel():
    kern = K.MatmulKernel("mm", operand(0, (5, 8), "float32"), operand(1, (8, 9), "float32"),
                          operand(2, (5, 9), "float32"))
    assert not gemv.applies(kern)


@pytest.mark.parametrize("tb", [False, True])
def test_batched_gemv_broadcasts_batch_dims(tb):
    a = _data((3, 1, 1, 40), 1)
    b = _data((4, 50, 40) if tb else (4, 40, 50), 2)
    kern = K.MatmulKernel("bmv", operand(0, a.shape, "float32"), operand(1, b.shape, "float32"),
                          operand(2, (3, 4, 1, 50), "float32"), transpose_b=tb)
    assert gemv.applies(kern)
    want = np.matmul(a, np.swapaxes(b, -1, -2) if tb else b)
    for tiling in TILINGS:
        got = run(kern, {0: a, 1: b}, {2: ((3, 4, 1, 50), "float32")}, tiling)[2]
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg=tiling)


@pytest.mark.parametrize("tb", [False, True])
def test_bias_relu_epilogue_sees_row_and_column(tb):
    m, n, k = 3, 1000, 64
    a, b, bias = _data((m, k), 1), _data((n, k) if tb else (k, n), 2), _data((n,), 3)
    epi = K.Epilogue(
        body=(K.ScalarOp("add", (K.Acc(0), K.Input(0)), "float32"),
              K.ScalarOp("cast", (K.IterIndex(0),), "float32"),
              K.ScalarOp("add", (K.Result(0), K.Result(1)), "float32"),
              K.ScalarOp("relu", (K.Result(2),), "float32")),
        yields=(K.Result(3),),
        inputs=(K.MappedOperand(operand(3, (n,), "float32"),
                                K.IndexingMap.of_dims(2, (1,))),))
    kern = K.MatmulKernel("mv", operand(0, a.shape, "float32"), operand(1, b.shape, "float32"),
                          operand(2, (m, n), "float32"), transpose_b=tb, epilogue=epi)
    assert gemv.applies(kern)
    want = np.maximum(a @ (b.T if tb else b) + bias + np.arange(m)[:, None], 0)
    for tiling in TILINGS:
        got = run(kern, {0: a, 1: b, 3: bias}, {2: ((m, n), "float32")}, tiling)[2]
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg=tiling)


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86 CPU names")
@pytest.mark.parametrize("cpu", ["x86-64-v3", "generic"])
@pytest.mark.parametrize("tb", [False, True])
def test_narrower_vectors(cpu, tb):
    m, n, k = 2, 77, 45
    a, b = _data((m, k), 1), _data((n, k) if tb else (k, n), 2)
    kern = K.MatmulKernel("mv", operand(0, a.shape, "float32"), operand(1, b.shape, "float32"),
                          operand(2, (m, n), "float32"), transpose_b=tb)
    got = run(kern, {0: a, 1: b}, {2: ((m, n), "float32")}, "each", **{"target-cpu": cpu})[2]
    np.testing.assert_allclose(got, a @ (b.T if tb else b), rtol=1e-4, atol=1e-5)
