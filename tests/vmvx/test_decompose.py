"""hal_core.compiler.decompose: each named kernel's generic decomposition, run through vmvx,
matches the named kernel run through vmvx (and numpy), epilogues, groups and padding included."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from harness import operand, run
from hal_vmvx.loader import VmvxLoader
from hal_vmvx.target import VmvxTarget
from test_elementwise import FLOATS
from test_named import CONVS, POOLS

from hal_core.compiler import kernel_ir as K
from hal_core.compiler.decompose import decompose
from hal_core.compiler.target import TargetOptions
from hal_core.errors import CompileError


RNG = np.random.default_rng(11)  # its own: drawing from the shared one reorders other tests


def sample(shape, dtype, lo=-20, hi=20):
    if dtype == "bool":
        return RNG.random(shape) < 0.5
    if dtype in FLOATS:
        return (RNG.standard_normal(shape) * 3).astype(dtype)
    return RNG.integers(lo, hi, shape).astype(dtype)


def run_decomposed(kernel, inputs, outputs):
    """Run the decomposition of ``kernel`` step by step over the same bindings + scratch."""
    d = decompose(kernel)
    assert d is not None and d.kernels
    assert all(isinstance(k, K.GenericKernel) for k in d.kernels)
    for k in d.kernels:
        K.validate(k)
    variant = VmvxTarget().compile(K.KernelExecutable("d", d.kernels), TargetOptions())
    exe = VmvxLoader().load(variant.payload, ())
    n = K.binding_count(kernel)
    assert d.scratch_binding == n
    bufs = [np.zeros(0, np.uint8) for _ in range(n + 1)]
    for b, a in inputs.items():
        bufs[b] = np.frombuffer(np.ascontiguousarray(a).tobytes(), np.uint8).copy()
    for b, (shape, dt) in outputs.items():
        bufs[b] = np.full(int(np.prod(shape)) * np.dtype(dt).itemsize, 0xAB, np.uint8)
    bufs[n] = np.full(d.scratch_size, 0xCD, np.uint8)  # undefined on entry
    for e, ep in enumerate(variant.entry_points):
        count = ep.workgroup_count[0]
        exe.run(e, (count, 1, 1), 0, count, bufs, ())
    return d, {b: np.frombuffer(bufs[b].tobytes(), dt).reshape(shape)
               for b, (shape, dt) in outputs.items()}


def same(kernel, inputs, outputs, rtol=1e-5, atol=1e-5):
    want = run(kernel, inputs, outputs)
    d, got = run_decomposed(kernel, inputs, outputs)
    for b in outputs:
        if np.issubdtype(want[b].dtype, np.floating):
            np.testing.assert_allclose(got[b].astype(np.float64), want[b].astype(np.float64),
                                       rtol=rtol, atol=atol)
        else:
            np.testing.assert_array_equal(got[b], want[b])
    return d


@pytest.mark.parametrize("dtype", ["float32", "int32", "float16"])
@pytest.mark.parametrize("ta,tb", [(False, False), (True, True)])
def test_matmul(dtype, ta, tb):
    m, n, k = 7, 5, 6
    a = sample((k, m) if ta else (m, k), dtype, -4, 4)
    b = sample((n, k) if tb else (k, n), dtype, -4, 4)
    kern = K.MatmulKernel("mm", operand(0, a.shape, dtype), operand(1, b.shape, dtype),
                          operand(2, (m, n), dtype), ta, tb,
                          acc_dtype="float32" if dtype == "float16" else None)
    d = same(kern, {0: a, 1: b}, {2: ((m, n), dtype)}, rtol=1e-2, atol=5e-2)
    assert len(d.kernels) == 1 and d.scratch_size == 0


def test_batched_matmul_int8_with_broadcast_and_epilogue():
    a, b = sample((3, 1, 5, 4), "int8", -50, 50), sample((2, 4, 6), "int8", -50, 50)
    bias = sample((6,), "int32", -100, 100)
    epi = K.Epilogue(
        body=(K.ScalarOp("add", (K.Acc(0), K.Input(0)), "int32"),
              K.ScalarOp("clip", (K.Result(0), K.Const(-128, "int32"), K.Const(127, "int32")),
                         "int32"),
              K.ScalarOp("cast", (K.Result(1),), "int8")),
        yields=(K.Result(2),),
        inputs=(K.MappedOperand(operand(3, (6,), "int32"), K.IndexingMap.of_dims(4, (3,))),))
    kern = K.MatmulKernel("q", operand(0, a.shape, "int8"), operand(1, b.shape, "int8"),
                          operand(2, (3, 2, 5, 6), "int8"), acc_dtype="int32", epilogue=epi)
    K.validate(kern)
    same(kern, {0: a, 1: b, 3: bias}, {2: ((3, 2, 5, 6), "int8")})


def test_matmul_epilogue_reading_the_output_index():
    # out = acc + row index (IterIndex of the epilogue's out dims maps to the M dim)
    a, b = sample((4, 3), "float32"), sample((3, 5), "float32")
    epi = K.Epilogue((K.ScalarOp("cast", (K.IterIndex(0),), "float32"),
                      K.ScalarOp("add", (K.Acc(0), K.Result(0)), "float32")), (K.Result(1),))
    kern = K.MatmulKernel("mi", operand(0, a.shape, "float32"), operand(1, b.shape, "float32"),
                          operand(2, (4, 5), "float32"), epilogue=epi)
    _, got = run_decomposed(kern, {0: a, 1: b}, {2: ((4, 5), "float32")})
    np.testing.assert_allclose(got[2], a @ b + np.arange(4)[:, None], rtol=1e-5)


@pytest.mark.parametrize("case", range(len(CONVS)))
def test_conv2d(case):
    xs, ws, strides, pads, dil, groups, has_bias = CONVS[case]
    x, w = sample(xs, "float32"), sample(ws, "float32")
    oh = (xs[2] + pads[0] + pads[2] - dil[0] * (ws[2] - 1) - 1) // strides[0] + 1
    ow = (xs[3] + pads[1] + pads[3] - dil[1] * (ws[3] - 1) - 1) // strides[1] + 1
    out = (xs[0], ws[0], oh, ow)
    relu = K.Epilogue((K.ScalarOp("relu", (K.Acc(0),), "float32"),), (K.Result(0),))
    kern = K.Conv2dKernel("conv", operand(0, xs, "float32"), operand(1, ws, "float32"),
                          operand(2, out, "float32"),
                          operand(3, (ws[0],), "float32") if has_bias else None,
                          strides, pads, dil, groups, epilogue=relu if case % 2 else None)
    ins = {0: x, 1: w, **({3: sample((ws[0],), "float32")} if has_bias else {})}
    d = same(kern, ins, {2: (out, "float32")}, rtol=1e-4, atol=1e-4)
    assert (d.scratch_size > 0) == any(pads)


@pytest.mark.parametrize("case", range(len(POOLS)))
@pytest.mark.parametrize("dtype", ["float32", "int32"])
def test_pool2d(case, dtype):
    kind, xs, ks, st, pads, ceil, incl = POOLS[case]
    out_hw = []
    for i, size in enumerate(xs[2:]):
        room = size + pads[i] + pads[i + 2] - ks[i]
        out_hw.append((-(-room // st[i]) if ceil else room // st[i]) + 1)
    out = xs[:2] + tuple(out_hw)
    kern = K.Pool2dKernel("pool", operand(0, xs, dtype), operand(1, out, dtype), kind, ks, st,
                          pads, incl)
    same(kern, {0: sample(xs, dtype)}, {1: (out, dtype)}, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("axis", [0, 2])
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_softmax(log, axis, dtype):
    x = sample((3, 4, 5), dtype) * np.asarray(4, dtype)
    x[1, 1, 1] = -np.inf
    kern = K.SoftmaxKernel("sm", operand(0, x.shape, dtype), operand(1, x.shape, dtype), axis,
                           log)
    tol = 3e-3 if dtype == "float16" else 1e-5
    d = same(kern, {0: x}, {1: (x.shape, dtype)}, rtol=tol, atol=tol)
    assert len(d.kernels) == 3 and d.scratch_size > 0


def test_softmax_with_an_epilogue():
    x = sample((4, 6), "float32")
    epi = K.Epilogue((K.ScalarOp("mul", (K.Acc(0), K.Input(0)), "float32"),), (K.Result(0),),
                     (K.MappedOperand(operand(2, (6,), "float32"),
                                      K.IndexingMap.of_dims(2, (1,))),))
    kern = K.SoftmaxKernel("sme", operand(0, x.shape, "float32"),
                           operand(1, x.shape, "float32"), 1, epilogue=epi)
    same(kern, {0: x, 2: sample((6,), "float32")}, {1: (x.shape, "float32")})


@pytest.mark.parametrize("kind", ["argmax", "argmin"])
@pytest.mark.parametrize("axis", [0, 2])
@pytest.mark.parametrize("keep", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "int8", "float16", "bool"])
@pytest.mark.parametrize("out_dtype", ["int32", "int64"])
def test_arg_reduce(kind, axis, keep, dtype, out_dtype):
    x = sample((4, 5, 6), dtype, -3, 3)  # ties: the first index must win
    if dtype.startswith("float"):
        x[2, 3, 4] = np.nan  # NaN wins, as numpy
    ref = (np.argmax if kind == "argmax" else np.argmin)(x, axis=axis, keepdims=keep)
    kern = K.ArgReduceKernel("arg", operand(0, x.shape, dtype),
                             operand(1, ref.shape, out_dtype), axis, kind)
    d, got = run_decomposed(kern, {0: x}, {1: (ref.shape, out_dtype)})
    np.testing.assert_array_equal(got[1], ref)
    assert len(d.kernels) == 2


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("idx_shape", [(), (4,), (2, 3)])
@pytest.mark.parametrize("dtype", ["float64", "int16", "bool"])
def test_gather(axis, idx_shape, dtype):
    data = sample((5, 6, 3), dtype)
    if dtype == "float64":
        data[0, 0, 0], data[1, 1, 1] = np.nan, -0.0
    n = data.shape[axis]
    idx = np.random.default_rng(3).integers(-n - 2, n + 2, idx_shape).astype(np.int32)
    kern = K.GatherKernel("g", operand(0, data.shape, dtype), operand(1, idx.shape, "int32"),
                          operand(2, np.take(data, np.clip(np.where(idx < 0, idx + n, idx), 0,
                                                           n - 1), axis=axis).shape, dtype),
                          axis)
    _, got = run_decomposed(kern, {0: data, 1: idx}, {2: (kern.out.shape, dtype)})
    want = run(kern, {0: data, 1: idx}, {2: (kern.out.shape, dtype)})[2]
    assert got[2].tobytes() == want.tobytes()  # bit-exact: NaN and -0.0 included


def test_a_generic_kernel_has_no_decomposition():
    x = operand(0, (3,), "float32")
    k = K.GenericKernel("g", (3,), ("parallel",), (K.MappedOperand(x, K.IndexingMap.identity(1)),),
                        (K.MappedOperand(operand(1, (3,), "float32"),
                                         K.IndexingMap.identity(1)),),
                        (K.ScalarOp("neg", (K.Input(0),), "float32"),), (K.Result(0),))
    assert decompose(k) is None


@st.composite
def conv_cases(draw):
    groups = draw(st.sampled_from([1, 2]))
    cg, og = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    pads = tuple(draw(st.integers(0, 2)) for _ in range(4))
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - pads[0] - pads[2]), 7))
    w = draw(st.integers(max(1, dw * (kw - 1) + 1 - pads[1] - pads[3]), 7))
    return (draw(st.integers(1, 2)), groups, cg, og, kh, kw, (sh, sw), pads, (dh, dw), h, w,
            draw(st.booleans()))


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(conv_cases())
def test_random_convolutions_match_the_named_kernel(case):
    n, g, cg, og, kh, kw, strides, pads, dil, h, w, bias = case
    xs, ws = (n, g * cg, h, w), (g * og, cg, kh, kw)
    oh = (h + pads[0] + pads[2] - dil[0] * (kh - 1) - 1) // strides[0] + 1
    ow = (w + pads[1] + pads[3] - dil[1] * (kw - 1) - 1) // strides[1] + 1
    kern = K.Conv2dKernel("conv", operand(0, xs, "float64"), operand(1, ws, "float64"),
                          operand(2, (n, g * og, oh, ow), "float64"),
                          operand(3, (g * og,), "float64") if bias else None,
                          strides, pads, dil, g)
    K.validate(kern)
    ins = {0: sample(xs, "float64"), 1: sample(ws, "float64"),
           **({3: sample((g * og,), "float64")} if bias else {})}
    same(kern, ins, {2: ((n, g * og, oh, ow), "float64")}, rtol=1e-9, atol=1e-9)


@st.composite
def pool_cases(draw):
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    pads = (draw(st.integers(0, kh - 1)), draw(st.integers(0, kw - 1)),
            draw(st.integers(0, kh - 1)), draw(st.integers(0, kw - 1)))
    h = draw(st.integers(max(1, kh - pads[0] - pads[2]), 7))
    w = draw(st.integers(max(1, kw - pads[1] - pads[3]), 7))
    return (draw(st.sampled_from(["max", "avg"])), (kh, kw), (sh, sw), pads, h, w,
            draw(st.booleans()), draw(st.booleans()), draw(st.sampled_from(["float64",
                                                                             "int16"])))


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(pool_cases())
def test_random_pools_match_the_named_kernel(case):
    kind, ks, st_, pads, h, w, ceil, incl, dtype = case
    out_hw = []
    for i, size in enumerate((h, w)):
        room = size + pads[i] + pads[i + 2] - ks[i]
        out_hw.append((-(-room // st_[i]) if ceil else room // st_[i]) + 1)
    kern = K.Pool2dKernel("pool", operand(0, (1, 2, h, w), dtype),
                          operand(1, (1, 2, *out_hw), dtype), kind, ks, st_, pads, incl)
    try:
        K.validate(kern)
    except CompileError:  # a window that ceil mode pushes past the padding: not a kernel
        event("invalid kernel")
        return
    event(f"{kind}{' ceil' if ceil else ''}")
    x = sample((1, 2, h, w), dtype, -50, 50)
    outs = {1: ((1, 2, *out_hw), dtype)}
    want = run(kern, {0: x}, outs)[1]
    got = run_decomposed(kern, {0: x}, outs)[1][1]
    # a ceil-mode window past the input (and its padding) counts no position: average 0/0
    live = np.ones(out_hw, bool)
    for i, size in enumerate((h, w)):
        lo, hi = (-pads[i], size + pads[i + 2]) if incl else (0, size)
        starts = np.arange(out_hw[i]) * st_[i] - pads[i]
        empty = np.minimum(starts + ks[i], hi) <= np.maximum(starts, lo)
        live &= ~(empty[:, None] if i == 0 else empty[None, :])
    if kind == "avg" and dtype == "float64":
        assert np.isnan(got[..., ~live]).all()  # NaN, as the reference (0/0)
    np.testing.assert_allclose(got[..., live], want[..., live], rtol=1e-9, atol=1e-9)
