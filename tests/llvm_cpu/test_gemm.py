"""The float32 matmul micro-kernel: remainders of every tile dim, transposes, broadcast batch
dims, empty K and fused epilogues, against numpy (conv2d through it: test_conv.py)."""

from __future__ import annotations

import numpy as np
import pytest
from hal_llvm_cpu import gemm
from llvm_harness import TILINGS, operand, run

from hal_core.compiler import kernel_ir as K


def _data(shape, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)


@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (7, 130, 65), (6, 64, 256), (13, 70, 300),
                                   (5, 3, 0), (64, 129, 7)])
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_matmul_shapes_and_transposes(m, n, k, ta, tb):
    a = _data((k, m) if ta else (m, k), 1)
    b = _data((n, k) if tb else (k, n), 2)
    kern = K.MatmulKernel("mm", operand(0, a.shape, "float32"), operand(1, b.shape, "float32"),
                          operand(2, (m, n), "float32"), ta, tb)
    assert gemm.applies(kern)
    want = (a.T if ta else a).astype(np.float64) @ (b.T if tb else b).astype(np.float64)
    for tiling in TILINGS:
        got = run(kern, {0: a, 1: b}, {2: ((m, n), "float32")}, tiling)[2]
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4, err_msg=tiling)


def test_batched_matmul_broadcasts_batch_dims():
    a, b = _data((3, 1, 5, 9), 1), _data((4, 9, 70), 2)
    kern = K.MatmulKernel("bmm", operand(0, a.shape, "float32"), operand(1, b.shape, "float32"),
                          operand(2, (3, 4, 5, 70), "float32"))
    for tiling in TILINGS:
        got = run(kern, {0: a, 1: b}, {2: ((3, 4, 5, 70), "float32")}, tiling)[2]
        np.testing.assert_allclose(got, np.matmul(a, b), rtol=1e-4, atol=1e-5)


def test_bias_relu_epilogue_uses_row_and_column_coordinates():
    m, n, k = 11, 67, 33
    a, b, bias = _data((m, k), 1), _data((k, n), 2), _data((n,), 3)
    out = operand(2, (m, n), "float32")
    epi = K.Epilogue(
        body=(K.ScalarOp("add", (K.Acc(0), K.Input(0)), "float32"),
              K.ScalarOp("cast", (K.IterIndex(0),), "float32"),
              K.ScalarOp("mul", (K.Result(1), K.Const(0.0, "float32")), "float32"),
              K.ScalarOp("add", (K.Result(0), K.Result(2)), "float32"),
              K.ScalarOp("relu", (K.Result(3),), "float32")),
        yields=(K.Result(4),),
        inputs=(K.MappedOperand(operand(3, (n,), "float32"),
                                K.IndexingMap.of_dims(2, (1,))),))
    kern = K.MatmulKernel("mm", operand(0, (m, k), "float32"), operand(1, (k, n), "float32"),
                          out, epilogue=epi)
    for tiling in TILINGS:
        got = run(kern, {0: a, 1: b, 3: bias}, {2: ((m, n), "float32")}, tiling)[2]
        np.testing.assert_allclose(got, np.maximum(a @ b + bias, 0), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", ["float64", "float16", "int32", "int8"])
def test_other_dtypes_take_the_general_path(dtype):
    m, n, k = 9, 70, 13
    g = np.random.default_rng(0)
    a = g.integers(-4, 4, (m, k)).astype(dtype)
    b = g.integers(-4, 4, (k, n)).astype(dtype)
    kern = K.MatmulKernel("mm", operand(0, a.shape, dtype), operand(1, b.shape, dtype),
                          operand(2, (m, n), dtype))
    assert not gemm.applies(kern)
    got = run(kern, {0: a, 1: b}, {2: ((m, n), dtype)}, "split")[2]
    np.testing.assert_array_equal(got, (a.astype(np.int64) @ b.astype(np.int64)).astype(dtype))
