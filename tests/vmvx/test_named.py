"""vmvx named kernels against numpy references: matmul, conv2d, pool2d, arg-reduce, gather,
softmax, with epilogues and several tilings."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from harness import TILINGS, compile_one, operand, run
from test_elementwise import check, sample

from hal_core.compiler import kernel_ir as K

# ---------------------------------------------------------------------------------------------
# matmul


@pytest.mark.parametrize("dtype", ("float32", "float64", "float16", "int32", "int8", "uint8"))
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_matmul_transposes(ta, tb, dtype):
    m, n, k = 33, 17, 9
    a = sample((k, m) if ta else (m, k), dtype, -4, 4)
    b = sample((n, k) if tb else (k, n), dtype, -4, 4)
    kern = K.MatmulKernel("mm", operand(0, a.shape, dtype), operand(1, b.shape, dtype),
                          operand(2, (m, n), dtype), ta, tb)
    want = np.matmul(a.T if ta else a, b.T if tb else b)
    for tiling in TILINGS:
        got = run(kern, {0: a, 1: b}, {2: ((m, n), dtype)}, tiling)[2]
        if dtype == "float16":
            np.testing.assert_allclose(got.astype(np.float32), want.astype(np.float32),
                                       rtol=1e-2, atol=5e-2)
        elif dtype.startswith("float"):  # BLAS sums tiles in other orders
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
        else:
            check(got, want.astype(dtype), dtype)


def test_batched_matmul_with_broadcast_batch_dims():
    a = sample((3, 1, 5, 4), "float32")
    b = sample((2, 4, 6), "float32")
    kern = K.MatmulKernel("bmm", operand(0, a.shape, "float32"), operand(1, b.shape, "float32"),
                          operand(2, (3, 2, 5, 6), "float32"))
    K.validate(kern)
    for tiling in TILINGS:
        got = run(kern, {0: a, 1: b}, {2: ((3, 2, 5, 6), "float32")}, tiling)[2]
        np.testing.assert_allclose(got, np.matmul(a, b), rtol=1e-5)


def test_matmul_int8_with_int32_accumulator_and_epilogue():
    # out = int8(clip(acc + bias[n], -128, 127)) with acc in int32
    a, b = sample((8, 64), "int8", -100, 100), sample((64, 5), "int8", -100, 100)
    bias = sample((5,), "int32", -1000, 1000)
    epi = K.Epilogue(
        body=(K.ScalarOp("add", (K.Acc(0), K.Input(0)), "int32"),
              K.ScalarOp("clip", (K.Result(0), K.Const(-128, "int32"), K.Const(127, "int32")),
                         "int32"),
              K.ScalarOp("cast", (K.Result(1),), "int8")),
        yields=(K.Result(2),),
        inputs=(K.MappedOperand(operand(3, (5,), "int32"), K.IndexingMap.of_dims(2, (1,))),))
    kern = K.MatmulKernel("q", operand(0, a.shape, "int8"), operand(1, b.shape, "int8"),
                          operand(2, (8, 5), "int8"), acc_dtype="int32", epilogue=epi)
    want = np.clip(a.astype(np.int32) @ b.astype(np.int32) + bias, -128, 127).astype(np.int8)
    for tiling in TILINGS:
        got = run(kern, {0: a, 1: b, 3: bias}, {2: ((8, 5), "int8")}, tiling)[2]
        np.testing.assert_array_equal(got, want)


def test_matmul_relu_epilogue_and_empty_k():
    a, b = sample((6, 3), "float32"), sample((3, 4), "float32")
    epi = K.Epilogue((K.ScalarOp("relu", (K.Acc(0),), "float32"),), (K.Result(0),))
    kern = K.MatmulKernel("mr", operand(0, a.shape, "float32"), operand(1, b.shape, "float32"),
                          operand(2, (6, 4), "float32"), epilogue=epi)
    np.testing.assert_allclose(run(kern, {0: a, 1: b}, {2: ((6, 4), "float32")})[2],
                               np.maximum(a @ b, 0), rtol=1e-6)
    kern = K.MatmulKernel("k0", operand(0, (6, 0), "float32"), operand(1, (0, 4), "float32"),
                          operand(2, (6, 4), "float32"))
    got = run(kern, {0: np.zeros((6, 0), np.float32), 1: np.zeros((0, 4), np.float32)},
              {2: ((6, 4), "float32")})[2]
    np.testing.assert_array_equal(got, np.zeros((6, 4), np.float32))


# ---------------------------------------------------------------------------------------------
# conv2d


def conv_ref(x, w, b, strides, pads, dil, groups):
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.zeros((n, c, h + pads[0] + pads[2], wd + pads[1] + pads[3]))
    xp[:, :, pads[0]:pads[0] + h, pads[1]:pads[1] + wd] = x
    oh = (h + pads[0] + pads[2] - dil[0] * (kh - 1) - 1) // strides[0] + 1
    ow = (wd + pads[1] + pads[3] - dil[1] * (kw - 1) - 1) // strides[1] + 1
    out = np.zeros((n, o, oh, ow))
    og = o // groups
    for oc, y, xx in itertools.product(range(o), range(oh), range(ow)):
        g = oc // og
        patch = xp[:, g * cg:(g + 1) * cg,
                   y * strides[0]:y * strides[0] + dil[0] * (kh - 1) + 1:dil[0],
                   xx * strides[1]:xx * strides[1] + dil[1] * (kw - 1) + 1:dil[1]]
        out[:, oc, y, xx] = (patch * w[oc]).sum(axis=(1, 2, 3))
    if b is not None:
        out += b.reshape(1, -1, 1, 1)
    return out


CONVS = [
    # (x shape, w shape, strides, pads, dilation, groups, bias)
    ((1, 3, 8, 8), (4, 3, 3, 3), (1, 1), (0, 0, 0, 0), (1, 1), 1, False),
    ((2, 4, 9, 7), (6, 2, 3, 3), (2, 1), (1, 1, 1, 1), (1, 1), 2, True),
    ((1, 4, 10, 10), (4, 1, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 4, True),     # depthwise
    ((1, 2, 11, 9), (3, 2, 3, 2), (2, 3), (2, 0, 1, 3), (2, 2), 1, False),     # dilation
    ((1, 8, 5, 5), (16, 8, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1, True),      # 1x1
    # unpadded: the input is read in place (a view), BLAS writes the output tile
    ((2, 6, 40, 33), (8, 3, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 2, True),     # 1x1 grouped
    ((2, 4, 30, 17), (5, 4, 1, 1), (2, 2), (0, 0, 0, 0), (1, 1), 1, False),    # 1x1 strided
    ((2, 5, 40, 21), (7, 5, 3, 2), (1, 1), (0, 0, 0, 0), (1, 1), 1, True),     # 3x2 unpadded
    ((1, 3, 12, 9), (4, 3, 3, 3), (1, 1), (0, 0, 1, 2), (1, 1), 1, False),     # pads right only
    # the windows never reach the last input columns (stride), and padding below forces a
    # padded copy of the rows: the copy must leave the unread columns out (was a crash)
    ((1, 1, 1, 2), (1, 1, 1, 1), (1, 2), (0, 0, 1, 0), (1, 1), 1, False),
    ((2, 3, 5, 7), (4, 3, 2, 2), (2, 3), (1, 0, 2, 0), (1, 1), 1, True),
    ((1, 2, 4, 2), (3, 2, 2, 4), (1, 1), (0, 0, 0, 2), (1, 1), 1, False),     # kw > w + pl
    ((1, 2, 2, 3), (2, 2, 3, 5), (1, 1), (0, 3, 1, 0), (1, 1), 1, True),      # kh, kw > input
    ((1, 2, 6, 9), (2, 1, 2, 3), (3, 2), (2, 0, 0, 1), (2, 2), 2, False),     # asymmetric
    ((1, 2, 3, 8), (2, 2, 2, 2), (1, 2), (0, 1, 0, 0), (1, 3), 1, False),     # left pad only
]


@pytest.mark.parametrize("case", range(len(CONVS)))
def test_conv2d(case):
    xs, ws, strides, pads, dil, groups, has_bias = CONVS[case]
    x, w = sample(xs, "float32"), sample(ws, "float32")
    b = sample((ws[0],), "float32") if has_bias else None
    want = conv_ref(x, w, b, strides, pads, dil, groups)
    kern = K.Conv2dKernel("conv", operand(0, xs, "float32"), operand(1, ws, "float32"),
                          operand(2, want.shape, "float32"),
                          operand(3, (ws[0],), "float32") if has_bias else None,
                          strides, pads, dil, groups)
    ins = {0: x, 1: w, **({3: b} if has_bias else {})}
    for tiling in TILINGS:
        got = run(kern, ins, {2: (want.shape, "float32")}, tiling)[2]
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_unpadded_rows_are_a_view_of_the_input():
    from hal_vmvx.named_microkernels import _padded_rows

    x = sample((1, 3, 10, 8), "float32")
    rows = _padded_rows(x, 2, 5, 1, 3, 1, 0, 0, 8, 0, np.dtype(np.float32))
    assert np.shares_memory(rows, x)
    np.testing.assert_array_equal(rows, x[:, :, 2:7])
    padded = _padded_rows(x, 0, 5, 1, 3, 1, 1, 1, 10, 0, np.dtype(np.float32))
    assert not np.shares_memory(padded, x) and padded.shape == (1, 3, 7, 10)
    np.testing.assert_array_equal(padded[:, :, 1:, 1:9], x[:, :, :6])
    assert not padded[:, :, 0].any() and not padded[..., 0].any()


def test_padded_rows_copies_only_the_columns_the_windows_reach():
    from hal_vmvx.named_microkernels import _padded_rows

    x = sample((1, 2, 3, 9), "float32")
    # rows 1..3 of the input plus one row of padding below; 2 columns of padding on the left
    # and windows reaching 6 padded columns: input columns 4.. are never read
    rows = _padded_rows(x, 1, 3, 1, 2, 1, 0, 2, 6, -1, np.dtype(np.float32))
    assert rows.shape == (1, 2, 3, 6)
    np.testing.assert_array_equal(rows[:, :, :2, 2:], x[:, :, 1:3, :4])
    assert (rows[:, :, 2] == -1).all() and (rows[..., :2] == -1).all()
    # windows lying wholly in the left padding read no input column at all
    edge = _padded_rows(x, 0, 1, 1, 1, 1, 1, 3, 2, 0, np.dtype(np.float64))
    assert edge.shape == (1, 2, 1, 2) and not edge.any()


# every placement of a window along one axis (input narrower or wider than the window,
# padding on one side or both, strides that skip the last elements, dilation), applied to
# the rows or to the columns; the other axis is padded after its end only, so that some
# tiles are copied with padding and others read in place
_AXIS_SWEEP = [
    (size, k, s, d, lo, hi)
    for size, k, s, d, (lo, hi) in itertools.product(
        (1, 2, 5), (1, 2, 3), (1, 2, 3), (1, 2), ((0, 0), (0, 2), (2, 0), (1, 1), (0, 1)))
    if size + lo + hi >= d * (k - 1) + 1
]


@pytest.mark.parametrize("dtype", ("float64", "float16", "int32"))
@pytest.mark.parametrize("axis", (0, 1))
def test_conv2d_window_placement_sweep(axis, dtype):
    for size, k, s, d, lo, hi in _AXIS_SWEEP:
        xs, ks = [3, 3], [2, 2]
        strides, pads, dil = [1, 1], [0, 0, 1, 1], [1, 1]
        xs[axis], ks[axis], strides[axis], dil[axis] = size, k, s, d
        pads[axis], pads[axis + 2] = lo, hi
        x = sample((1, 2, *xs), dtype, -5, 5)
        w = sample((2, 2, *ks), dtype, -5, 5)
        want = conv_ref(x.astype(np.float64), w.astype(np.float64), None, strides, pads, dil, 1)
        kern = K.Conv2dKernel("c", operand(0, x.shape, dtype), operand(1, w.shape, dtype),
                              operand(2, want.shape, dtype), None, tuple(strides), tuple(pads),
                              tuple(dil), 1)
        K.validate(kern)
        for tiling in ("whole", "each"):
            got = run(kern, {0: x, 1: w}, {2: (want.shape, dtype)}, tiling)[2]
            tol = 2e-2 if dtype == "float16" else 1e-9
            np.testing.assert_allclose(got.astype(np.float64), want, rtol=tol, atol=tol,
                                       err_msg=f"{(size, k, s, d, lo, hi)} on axis {axis}")


def test_conv2d_float16():
    x, w = sample((1, 4, 7, 7), "float16"), sample((6, 2, 3, 3), "float16")
    want = conv_ref(x.astype(np.float64), w.astype(np.float64), None, (1, 1), (1, 1, 1, 1),
                    (1, 1), 2)
    kern = K.Conv2dKernel("c16", operand(0, x.shape, "float16"), operand(1, w.shape, "float16"),
                          operand(2, want.shape, "float16"), padding=(1, 1, 1, 1), groups=2)
    for tiling in TILINGS:
        got = run(kern, {0: x, 1: w}, {2: (want.shape, "float16")}, tiling)[2]
        np.testing.assert_allclose(got.astype(np.float64), want, rtol=2e-3, atol=2e-2)


def test_conv2d_int_and_f64_with_epilogue():
    x, w = sample((1, 2, 6, 6), "int32", -5, 5), sample((3, 2, 3, 3), "int32", -5, 5)
    want = conv_ref(x, w, None, (1, 1), (1, 1, 1, 1), (1, 1), 1).astype(np.int32)
    kern = K.Conv2dKernel("ci", operand(0, x.shape, "int32"), operand(1, w.shape, "int32"),
                          operand(2, want.shape, "int32"), padding=(1, 1, 1, 1))
    np.testing.assert_array_equal(run(kern, {0: x, 1: w}, {2: (want.shape, "int32")})[2], want)
    xf, wf = x.astype(np.float64), w.astype(np.float64)
    epi = K.Epilogue((K.ScalarOp("tanh", (K.Acc(0),), "float64"),), (K.Result(0),))
    kern = K.Conv2dKernel("cf", operand(0, x.shape, "float64"), operand(1, w.shape, "float64"),
                          operand(2, want.shape, "float64"), padding=(1, 1, 1, 1), epilogue=epi)
    for tiling in TILINGS:
        got = run(kern, {0: xf, 1: wf}, {2: (want.shape, "float64")}, tiling)[2]
        np.testing.assert_allclose(got, np.tanh(want), rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# pooling


def pool_ref(x, kind, ks, strides, pads, out_hw, incl):
    n, c, h, w = x.shape
    out = np.zeros((n, c) + out_hw)
    for y, xx in itertools.product(range(out_hw[0]), range(out_hw[1])):
        hs, ws_ = y * strides[0] - pads[0], xx * strides[1] - pads[1]
        he, we = hs + ks[0], ws_ + ks[1]
        h0, w0, h1, w1 = max(hs, 0), max(ws_, 0), min(he, h), min(we, w)
        win = x[:, :, h0:h1, w0:w1].astype(np.float64)
        if kind == "max":
            out[:, :, y, xx] = win.max(axis=(2, 3))
        else:
            if incl:
                cnt = (min(he, h + pads[2]) - max(hs, -pads[0])) * \
                      (min(we, w + pads[3]) - max(ws_, -pads[1]))
            else:
                cnt = (h1 - h0) * (w1 - w0)
            out[:, :, y, xx] = win.sum(axis=(2, 3)) / cnt
    return out


POOLS = [
    # kind, x shape, kernel, strides, pads, ceil, count_include_pad
    ("max", (1, 2, 8, 8), (2, 2), (2, 2), (0, 0, 0, 0), False, False),
    ("max", (2, 3, 7, 9), (3, 3), (2, 2), (1, 1, 1, 1), True, False),
    ("avg", (1, 2, 7, 7), (3, 3), (2, 2), (1, 1, 1, 1), False, False),
    ("avg", (1, 2, 7, 7), (3, 3), (2, 2), (1, 1, 1, 1), False, True),
    ("avg", (1, 3, 6, 5), (2, 3), (2, 2), (0, 1, 0, 1), True, True),
    ("avg", (2, 4, 5, 6), (5, 6), (1, 1), (0, 0, 0, 0), False, False),      # global
    # windows that never reach the last input columns, with rows needing padding
    ("max", (1, 2, 3, 5), (2, 2), (2, 2), (0, 0, 1, 0), False, False),
    ("avg", (1, 2, 4, 7), (2, 2), (1, 3), (1, 0, 1, 0), False, True),
    ("avg", (1, 2, 2, 3), (3, 3), (1, 2), (2, 0, 0, 2), True, False),       # window > input
    ("max", (1, 2, 5, 4), (3, 2), (3, 1), (2, 1, 0, 0), False, False),      # asymmetric
]


@pytest.mark.parametrize("case", range(len(POOLS)))
@pytest.mark.parametrize("dtype", ("float32", "float64", "int32"))
def test_pool2d(case, dtype):
    kind, xs, ks, st, pads, ceil, incl = POOLS[case]
    x = sample(xs, dtype)
    out_hw = []
    for i, size in enumerate(xs[2:]):
        room = size + pads[i] + pads[i + 2] - ks[i]
        out_hw.append((-(-room // st[i]) if ceil else room // st[i]) + 1)
    out_hw = tuple(out_hw)
    want = pool_ref(x, kind, ks, st, pads, out_hw, incl)
    kern = K.Pool2dKernel("pool", operand(0, xs, dtype), operand(1, xs[:2] + out_hw, dtype),
                          kind, ks, st, pads, incl)
    K.validate(kern)
    for tiling in TILINGS:
        got = run(kern, {0: x}, {1: (xs[:2] + out_hw, dtype)}, tiling)[1]
        if dtype == "int32":
            np.testing.assert_array_equal(got, np.trunc(want).astype(np.int32))
        else:
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kind,incl", [("max", False), ("avg", False), ("avg", True)])
@pytest.mark.parametrize("axis", (0, 1))
def test_pool2d_window_placement_sweep(axis, kind, incl):
    # as the conv sweep; a pooling pad is less than its window, and no dilation
    for size, k, s, _, lo, hi in _AXIS_SWEEP:
        if max(lo, hi) >= k or size + lo + hi < k:
            continue
        xs, ks, strides, pads = [3, 3], [2, 2], [1, 1], [0, 0, 1, 1]
        xs[axis], ks[axis], strides[axis] = size, k, s
        pads[axis], pads[axis + 2] = lo, hi
        out_hw = tuple((xs[i] + pads[i] + pads[i + 2] - ks[i]) // strides[i] + 1
                       for i in range(2))
        x = sample((1, 2, *xs), "float64")
        want = pool_ref(x, kind, ks, strides, pads, out_hw, incl)
        kern = K.Pool2dKernel("p", operand(0, x.shape, "float64"),
                              operand(1, (1, 2, *out_hw), "float64"), kind, tuple(ks),
                              tuple(strides), tuple(pads), incl)
        K.validate(kern)
        for tiling in ("whole", "each"):
            got = run(kern, {0: x}, {1: ((1, 2, *out_hw), "float64")}, tiling)[1]
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12,
                                       err_msg=f"{(size, k, s, lo, hi)} on axis {axis}")


# ---------------------------------------------------------------------------------------------
# argmax / gather / softmax


@pytest.mark.parametrize("kind", ["argmax", "argmin"])
@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("keep", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "int8", "uint8", "float16"])
def test_arg_reduce(kind, axis, keep, dtype):
    x = sample((4, 5, 6), dtype, -3, 3)  # many ties: the first index must win
    ref = (np.argmax if kind == "argmax" else np.argmin)(x, axis=axis, keepdims=keep)
    kern = K.ArgReduceKernel("arg", operand(0, x.shape, dtype), operand(1, ref.shape, "int32"),
                             axis, kind)
    for tiling in TILINGS:
        got = run(kern, {0: x}, {1: (ref.shape, "int32")}, tiling)[1]
        np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("idx_shape", [(), (4,), (2, 3)])
def test_gather(axis, idx_shape):
    data = sample((5, 6, 7), "float64")
    n = data.shape[axis]
    idx = RNG_IDX.integers(-n, n, idx_shape).astype(np.int64)
    ref = np.take(data, idx, axis=axis)
    kern = K.GatherKernel("g", operand(0, data.shape, "float64"),
                          operand(1, idx.shape, "int64"), operand(2, ref.shape, "float64"), axis)
    for tiling in TILINGS:
        got = run(kern, {0: data, 1: idx}, {2: (ref.shape, "float64")}, tiling)[2]
        np.testing.assert_array_equal(got, ref)


RNG_IDX = np.random.default_rng(1)


def test_gather_clamps_out_of_range_indices():
    data = np.arange(10, dtype=np.int16)
    idx = np.array([0, 9, 10, 100, -1, -10, -11, -1000], np.int32)
    kern = K.GatherKernel("g", operand(0, (10,), "int16"), operand(1, (8,), "int32"),
                          operand(2, (8,), "int16"), 0)
    got = run(kern, {0: data, 1: idx}, {2: ((8,), "int16")})[2]
    np.testing.assert_array_equal(got, [0, 9, 9, 9, 9, 0, 0, 0])


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_softmax(log, axis, dtype):
    x = sample((3, 4, 5), dtype) * np.asarray(4, dtype)
    xf = x.astype(np.float64)
    e = np.exp(xf - xf.max(axis=axis, keepdims=True))
    want = e / e.sum(axis=axis, keepdims=True)
    if log:
        want = np.log(want)
    kern = K.SoftmaxKernel("sm", operand(0, x.shape, dtype), operand(1, x.shape, dtype), axis,
                           log)
    for tiling in TILINGS:
        got = run(kern, {0: x}, {1: (x.shape, dtype)}, tiling)[1]
        tol = 3e-3 if dtype == "float16" else 1e-5
        np.testing.assert_allclose(got.astype(np.float64), want, rtol=tol, atol=tol)


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_softmax_computed_in_the_output_over_many_tiles(log, dtype):
    # big enough for several workgroups; rows with -inf entries and a row of equal values
    x = sample((300, 1000), dtype)
    x[5, :500] = -np.inf
    x[7] = 2
    xf = x.astype(np.float64)
    e = np.exp(xf - xf.max(axis=1, keepdims=True))
    want = e / e.sum(axis=1, keepdims=True)
    if log:
        with np.errstate(divide="ignore"):
            want = np.log(want)
    kern = K.SoftmaxKernel("sm", operand(0, x.shape, dtype), operand(1, x.shape, dtype), 1, log)
    variant, _ = compile_one(kern)
    assert variant.entry_points[0].workgroup_count[0] > 1
    for tiling in TILINGS:
        got = run(kern, {0: x}, {1: (x.shape, dtype)}, tiling)[1]
        tol = 3e-3 if dtype == "float16" else 1e-5
        np.testing.assert_allclose(got.astype(np.float64), want, rtol=tol, atol=tol)
        np.testing.assert_allclose(got[7].astype(np.float64), want[7], rtol=tol)


def test_pointwise_float_conv_is_one_blas_call():
    # a 1x1, stride-1, unpadded f32 conv is a matmul on the input itself: one workgroup (BLAS
    # threads itself), like matmul; a padded one still splits rows over workgroups
    def workgroups(pads):
        kern = K.Conv2dKernel("c", operand(0, (1, 64, 64, 64), "float32"),
                              operand(1, (64, 64, 1, 1), "float32"),
                              operand(2, (1, 64, 64 + pads[0] + pads[2], 64 + pads[1] + pads[3]),
                                      "float32"), padding=pads)
        return compile_one(kern)[0].entry_points[0].workgroup_count[0]
    assert workgroups((0, 0, 0, 0)) == 1
    assert workgroups((1, 1, 1, 1)) > 1
