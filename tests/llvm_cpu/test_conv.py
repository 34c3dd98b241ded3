"""float32 conv2d through the micro-kernel: strides, padding, dilation, groups, every packing
(run-wise, wide-load, gather, same-padded stride 1, in place), outputs of 16q+1 positions and
epilogue operands read by flat position or per coordinate, against a numpy reference."""

from __future__ import annotations

import platform

import numpy as np
import pytest
from hal_llvm_cpu import conv
from llvm_harness import TILINGS, operand, run

from hal_core.compiler import kernel_ir as K


def _data(shape, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)


def _conv_ref(x, w, bias, strides, padding, dilation, groups):
    n, _, h, wd = x.shape
    o, cg, kh, kw = w.shape
    top, left, bottom, right = padding
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (top, bottom), (left, right)))
    oh = (h + top + bottom - dilation[0] * (kh - 1) - 1) // strides[0] + 1
    ow = (wd + left + right - dilation[1] * (kw - 1) - 1) // strides[1] + 1
    out = np.zeros((n, o, oh, ow))
    og = o // groups
    for ky in range(kh):
        for kx in range(kw):
            ys, xs = ky * dilation[0], kx * dilation[1]
            patch = xp[:, :, ys:ys + strides[0] * (oh - 1) + 1:strides[0],
                       xs:xs + strides[1] * (ow - 1) + 1:strides[1]]
            for g in range(groups):
                out[:, g * og:(g + 1) * og] += np.einsum(
                    "nchw,oc->nohw", patch[:, g * cg:(g + 1) * cg],
                    w[g * og:(g + 1) * og, :, ky, kx])
    if bias is not None:
        out += bias.reshape(1, -1, 1, 1)
    return out


@pytest.mark.parametrize("shape", [
    # (n, c, h, w, o, kh, kw, strides, padding, dilation, groups)
    (1, 3, 9, 11, 8, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),
    (2, 4, 10, 10, 70, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1),
    (1, 5, 13, 9, 7, 3, 2, (2, 3), (2, 0, 1, 3), (1, 1), 1),
    (1, 6, 12, 12, 6, 3, 3, (1, 1), (2, 2, 2, 2), (2, 2), 3),
    (1, 8, 7, 7, 16, 1, 1, (2, 2), (0, 0, 0, 0), (1, 1), 1),
    (1, 4, 5, 5, 4, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 4),
    # strided packing a vector at a time (stride <= 4): runs longer than a vector, padding
    # and dilation cutting into them; stride 5 takes the scalar copy
    (1, 3, 40, 45, 9, 3, 3, (2, 2), (1, 1, 1, 1), (1, 1), 1),
    (1, 2, 30, 70, 5, 3, 3, (3, 3), (1, 2, 1, 0), (1, 2), 1),
    (1, 2, 21, 90, 4, 2, 3, (1, 4), (0, 3, 1, 2), (1, 1), 1),
    (1, 2, 11, 60, 3, 1, 1, (5, 5), (0, 0, 0, 0), (1, 1), 1),
    # stride 1 along x packed run by run: row stride 2, uneven padding, dilation along x
    (1, 3, 20, 37, 10, 3, 5, (2, 1), (2, 1, 0, 3), (1, 2), 1),
    # outputs of 16q+1 positions (7x7, 17, 1, 289) end in a column done as dot products
    # along k, some with K past one KC block and a K tail off the 16-multiple
    (1, 40, 7, 7, 13, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),
    (1, 300, 7, 7, 9, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1),
    (1, 6, 13, 13, 8, 3, 3, (2, 2), (1, 1, 1, 1), (1, 1), 2),
    (1, 33, 1, 17, 70, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1),
    (1, 21, 1, 1, 7, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1),
    (1, 5, 17, 17, 12, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),
    # "same" stride-1 packing a vector of the panel at a time: 5x5, dilation, panels
    # crossing several output rows of a narrow image
    (1, 4, 6, 9, 10, 5, 5, (1, 1), (2, 2, 2, 2), (1, 1), 1),
    (1, 3, 30, 30, 6, 3, 3, (1, 1), (2, 2, 2, 2), (2, 2), 1),
])
@pytest.mark.parametrize("with_bias", [False, True])
def test_conv2d_through_the_micro_kernel(shape, with_bias):
    n, c, h, w, o, kh, kw, strides, padding, dilation, groups = shape
    x, wt = _data((n, c, h, w), 1), _data((o, c // groups, kh, kw), 2)
    bias = _data((o,), 3) if with_bias else None
    want = _conv_ref(x, wt, bias, strides, padding, dilation, groups)
    out = operand(2, want.shape, "float32")
    epi = K.Epilogue(body=(K.ScalarOp("tanh", (K.Acc(0),), "float32"),), yields=(K.Result(0),))
    kern = K.Conv2dKernel("conv", operand(0, x.shape, "float32"), operand(1, wt.shape, "float32"),
                          out, operand(3, (o,), "float32") if with_bias else None, strides,
                          padding, dilation, groups, epilogue=epi)
    assert conv.conv_applies(kern)
    inputs = {0: x, 1: wt} | ({3: bias} if with_bias else {})
    for tiling in TILINGS:
        got = run(kern, inputs, {2: (want.shape, "float32")}, tiling)[2]
        np.testing.assert_allclose(got, np.tanh(want), rtol=1e-4, atol=1e-5, err_msg=tiling)


@pytest.mark.parametrize("hw,k,stride", [(9, 3, 1), (12, 1, 1), (14, 3, 2), (7, 1, 1)])
def test_conv2d_epilogue_operands_flat_and_strided(hw, k, stride):
    """A residual (contiguous over the output's positions: read by flat position, prefetched)
    and a row vector broadcast along oy plus the output row index (per coordinate)."""
    c, o = 16, 24
    x, wt, bias = _data((1, c, hw, hw), 1), _data((o, c, k, k), 2), _data((o,), 3)
    pad = k // 2
    want = _conv_ref(x, wt, bias, (stride, stride), (pad,) * 4, (1, 1), 1)
    oh = want.shape[2]
    res, row = _data(want.shape, 4), _data((oh,), 5)
    out = operand(2, want.shape, "float32")
    flat = K.Epilogue(
        body=(K.ScalarOp("add", (K.Acc(0), K.Input(0)), "float32"),
              K.ScalarOp("relu", (K.Result(0),), "float32")),
        yields=(K.Result(1),),
        inputs=(K.MappedOperand(operand(4, res.shape, "float32"), K.IndexingMap.identity(4)),))
    per_coord = K.Epilogue(
        body=(K.ScalarOp("sub", (K.Acc(0), K.Input(0)), "float32"),
              K.ScalarOp("cast", (K.IterIndex(2),), "float32"),
              K.ScalarOp("add", (K.Result(0), K.Result(1)), "float32")),
        yields=(K.Result(2),),
        inputs=(K.MappedOperand(operand(4, row.shape, "float32"),
                                K.IndexingMap.of_dims(4, (3,))),))
    for epi, extra, expect in (
            (flat, res, np.maximum(want + res, 0)),
            (per_coord, row, want - row + np.arange(oh)[:, None])):
        kern = K.Conv2dKernel("conv", operand(0, x.shape, "float32"),
                              operand(1, wt.shape, "float32"), out, operand(3, (o,), "float32"),
                              (stride, stride), (pad,) * 4, (1, 1), 1, epilogue=epi)
        for tiling in TILINGS:
            got = run(kern, {0: x, 1: wt, 3: bias, 4: extra}, {2: (want.shape, "float32")},
                      tiling)[2]
            np.testing.assert_allclose(got, expect, rtol=1e-4, atol=1e-5, err_msg=tiling)


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86 CPU names")
@pytest.mark.parametrize("cpu", ["x86-64-v3", "generic"])
def test_narrower_vectors(cpu):
    """8- and 4-lane targets (AVX2, SSE2): the dot-product column (P = 8q+1 / 4q+1),
    same-padded packing, a residual epilogue."""
    for c, hw, k in ((40, 7, 3), (300, 5, 1), (6, 9, 3)):
        x, wt, bias = _data((1, c, hw, hw), 1), _data((11, c, k, k), 2), _data((11,), 3)
        want = _conv_ref(x, wt, bias, (1, 1), (k // 2,) * 4, (1, 1), 1)
        res = _data(want.shape, 4)
        epi = K.Epilogue(
            body=(K.ScalarOp("add", (K.Acc(0), K.Input(0)), "float32"),),
            yields=(K.Result(0),),
            inputs=(K.MappedOperand(operand(4, res.shape, "float32"),
                                    K.IndexingMap.identity(4)),))
        kern = K.Conv2dKernel("conv", operand(0, x.shape, "float32"),
                              operand(1, wt.shape, "float32"), operand(2, want.shape, "float32"),
                              operand(3, (11,), "float32"), (1, 1), (k // 2,) * 4, (1, 1), 1,
                              epilogue=epi)
        for tiling in ("whole", "each"):
            got = run(kern, {0: x, 1: wt, 3: bias, 4: res}, {2: (want.shape, "float32")},
                      tiling, **{"target-cpu": cpu})[2]
            np.testing.assert_allclose(got, want + res, rtol=1e-4, atol=1e-5, err_msg=tiling)
