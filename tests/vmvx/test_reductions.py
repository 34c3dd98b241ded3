"""vmvx generic reduction kernels against numpy: combiners, axes, keepdims, finalize, empties."""

from __future__ import annotations

import numpy as np
import pytest
from harness import TILINGS, ident, operand, run
from test_elementwise import check, sample

from hal_core.compiler import kernel_ir as K

COMBINERS = {"sum": np.sum, "prod": np.prod, "max": np.max, "min": np.min}


def reduce_kernel(shape, axes, comb, dtype, keepdims=False, finalize=None, out_dtype=None,
                  body=(), yields=None):
    nd = len(shape)
    kinds = tuple("reduction" if d in axes else "parallel" for d in range(nd))
    if keepdims:
        out_shape = tuple(1 if d in axes else n for d, n in enumerate(shape))
        omap = K.IndexingMap.of_dims(nd, tuple(None if d in axes else d for d in range(nd)))
    else:
        out_shape = tuple(n for d, n in enumerate(shape) if d not in axes)
        omap = K.IndexingMap.of_dims(nd, tuple(d for d in range(nd) if d not in axes))
    out = K.MappedOperand(operand(1, out_shape, out_dtype or dtype), omap)
    return K.GenericKernel("red", tuple(shape), kinds, (ident(operand(0, shape, dtype)),),
                           (out,), tuple(body), yields or (K.Input(0),), (comb,), finalize), \
        out_shape


@pytest.mark.parametrize("dtype", ("float32", "float16", "float64", "int8", "int32", "int64",
                                   "uint8"))
@pytest.mark.parametrize("comb", sorted(COMBINERS))
@pytest.mark.parametrize("axes", [(0,), (1,), (2,), (0, 2), (0, 1, 2)])
def test_reduce(comb, axes, dtype):
    shape = (5, 6, 7)
    x = sample(shape, dtype, -3, 4)
    k, out_shape = reduce_kernel(shape, axes, comb, dtype)
    got = run(k, {0: x}, {1: (out_shape, dtype)})[1]
    with np.errstate(all="ignore"):  # float16 products overflow to inf, as they should
        want = COMBINERS[comb](x, axis=axes).astype(dtype)
        if dtype == "float16":
            want = COMBINERS[comb](x.astype(np.float32), axis=axes).astype(dtype)
    if dtype == "float16":
        np.testing.assert_allclose(got.astype(np.float32), want.astype(np.float32), rtol=2e-2,
                                   atol=5e-2)
    else:
        check(got, want, dtype)


@pytest.mark.parametrize("tiling", TILINGS)
@pytest.mark.parametrize("keepdims", [False, True])
def test_reduce_keepdims_and_tilings(keepdims, tiling):
    x = sample((300, 40, 3), "float64")
    k, out_shape = reduce_kernel(x.shape, (1,), "max", "float64", keepdims)
    got = run(k, {0: x}, {1: (out_shape, "float64")}, tiling)[1]
    np.testing.assert_array_equal(got, x.max(axis=1, keepdims=keepdims))


def test_bool_max_min_are_any_all():
    x = sample((6, 9), "bool")
    for comb, ref in (("max", np.any), ("min", np.all)):
        k, out_shape = reduce_kernel(x.shape, (1,), comb, "bool")
        np.testing.assert_array_equal(run(k, {0: x}, {1: (out_shape, "bool")})[1],
                                      ref(x, axis=1))


def test_mean_with_f32_accumulator_and_epilogue_input():
    # mean(x.astype(f32), axis=1) as f16, plus a per-row bias: body cast, finalize div + add
    x = sample((8, 50), "float16")
    bias = sample((8,), "float16")
    body = (K.ScalarOp("cast", (K.Input(0),), "float32"),)
    fin = K.Epilogue(
        body=(K.ScalarOp("div", (K.Acc(0), K.Const(50.0, "float32")), "float32"),
              K.ScalarOp("cast", (K.Result(0),), "float16"),
              K.ScalarOp("add", (K.Result(1), K.Input(0)), "float16")),
        yields=(K.Result(2),),
        inputs=(K.MappedOperand(operand(2, (8,), "float16"), K.IndexingMap.of_dims(2, (0,))),))
    k, out_shape = reduce_kernel(x.shape, (1,), "sum", "float16", finalize=fin, body=body,
                                 yields=(K.Result(0),))
    for tiling in TILINGS:
        got = run(k, {0: x, 2: bias}, {1: (out_shape, "float16")}, tiling)[1]
        want = (x.astype(np.float32).mean(axis=1).astype(np.float16) + bias)
        np.testing.assert_allclose(got.astype(np.float32), want.astype(np.float32), rtol=1e-3)


@pytest.mark.parametrize("comb", sorted(COMBINERS))
def test_empty_reduction_gives_identity(comb):
    k, out_shape = reduce_kernel((4, 0), (1,), comb, "float32")
    got = run(k, {0: np.zeros((4, 0), np.float32)}, {1: (out_shape, "float32")})[1]
    ident_ = {"sum": 0.0, "prod": 1.0, "max": -np.inf, "min": np.inf}[comb]
    np.testing.assert_array_equal(got, np.full(4, ident_, np.float32))


def test_full_reduction_to_scalar_and_zero_size_parallel():
    x = sample((3, 4), "int32")
    k, out_shape = reduce_kernel(x.shape, (0, 1), "sum", "int32")
    assert out_shape == ()
    np.testing.assert_array_equal(run(k, {0: x}, {1: ((), "int32")})[1], x.sum())
    k, out_shape = reduce_kernel((0, 5), (1,), "sum", "int32")
    assert run(k, {0: np.zeros((0, 5), np.int32)}, {1: ((0,), "int32")})[1].shape == (0,)


def test_reduction_of_a_computed_body_and_two_outputs():
    # sum(x*x) and max(x) over axis 0 in one kernel
    x = sample((30, 7), "float32")
    o1 = K.MappedOperand(operand(1, (7,), "float32"), K.IndexingMap.of_dims(2, (1,)))
    o2 = K.MappedOperand(operand(2, (7,), "float32"), K.IndexingMap.of_dims(2, (1,)))
    k = K.GenericKernel("two", x.shape, ("reduction", "parallel"),
                        (ident(operand(0, x.shape, "float32")),), (o1, o2),
                        (K.ScalarOp("mul", (K.Input(0), K.Input(0)), "float32"),),
                        (K.Result(0), K.Input(0)), ("sum", "max"))
    for tiling in TILINGS:
        got = run(k, {0: x}, {1: ((7,), "float32"), 2: ((7,), "float32")}, tiling)
        np.testing.assert_allclose(got[1], (x * x).sum(axis=0), rtol=1e-5)
        np.testing.assert_array_equal(got[2], x.max(axis=0))


def test_count_of_constant_yield():
    k, out_shape = reduce_kernel((3, 5), (1,), "sum", "int32", body=(),
                                 yields=(K.Const(1, "int32"),))
    got = run(k, {0: np.zeros((3, 5), np.int32)}, {1: (out_shape, "int32")})[1]
    np.testing.assert_array_equal(got, [5, 5, 5])


@pytest.mark.parametrize("tiling", TILINGS)
def test_full_reduction_streams_chunks_serially(tiling):
    # mean(x*x) over 300k elements: the body must not be materialised whole
    from hal_vmvx import bytecode, lowering
    from harness import compile_one

    x = sample((300, 1000), "float32")
    body = (K.ScalarOp("mul", (K.Input(0), K.Input(0)), "float32"),
            K.ScalarOp("cast", (K.Result(0),), "float64"))
    fin = K.Epilogue((K.ScalarOp("div", (K.Acc(0), K.Const(x.size, "float64")), "float64"),),
                     (K.Result(0),))
    k, _out_shape = reduce_kernel(x.shape, (0, 1), "sum", "float32", finalize=fin,
                                 out_dtype="float64", body=body, yields=(K.Result(1),))
    got = run(k, {0: x}, {1: ((), "float64")}, tiling)[1]
    np.testing.assert_allclose(got, (x.astype(np.float64) ** 2).mean(), rtol=1e-6)
    variant, _ = compile_one(k)
    (code,) = bytecode.decode(variant.payload)
    assert code.serial and code.tail_instrs > 0
    scratch = [v for v in code.values if v.kind == bytecode.SCRATCH]
    # scratch is allocated chunk_rows rows along its tile axis (or is a 0-d accumulator)
    assert 0 < code.chunk_rows < code.rows
    for v in scratch:
        per_chunk = code.chunk_rows * np.prod(v.shape[1:]) if v.tile_axis == 0 else 1
        assert v.tile_axis in (0, -1) and per_chunk <= lowering.CHUNK_ELEMENTS
        assert v.tile_axis == 0 or v.shape == ()


def _code(kernel):
    from hal_vmvx import bytecode
    from harness import compile_one

    variant, _ = compile_one(kernel)
    (code,) = bytecode.decode(variant.payload)
    return code


@pytest.mark.parametrize("tiling", TILINGS)
def test_sum_over_leading_axis_runs_reduction_first(tiling):
    # sum(x, axis=0) of a row-major matrix: whole rows are reduced (one numpy call, numpy picks
    # the loop order), not strided chunks of a few columns
    x = sample((300, 200), "float32")
    k, out_shape = reduce_kernel(x.shape, (0,), "sum", "float32")
    got = run(k, {0: x}, {1: (out_shape, "float32")}, tiling)[1]
    np.testing.assert_allclose(got, x.sum(axis=0), rtol=1e-5, atol=1e-5)
    code = _code(k)
    assert code.serial and code.chunk_rows == 0
    (view,) = [v for v in code.values if v.binding == 0 and v.kind == 0]
    assert view.shape == (300, 200) and view.tile_axis == 0  # the reduced dim comes first


@pytest.mark.parametrize("tiling", TILINGS)
@pytest.mark.parametrize("comb", sorted(COMBINERS))
def test_reduction_first_with_a_body_streams_row_chunks(comb, tiling):
    # comb(x*x, axis=0) of a (400, 3, 50) tensor, contiguous along the parallel dim 2
    x = sample((400, 3, 50), "float64", -1, 1)
    body = (K.ScalarOp("mul", (K.Input(0), K.Input(0)), "float64"),)
    k, out_shape = reduce_kernel(x.shape, (0,), comb, "float64", body=body,
                                 yields=(K.Result(0),))
    got = run(k, {0: x}, {1: (out_shape, "float64")}, tiling)[1]
    np.testing.assert_allclose(got, COMBINERS[comb](x * x, axis=0), rtol=1e-12)
    code = _code(k)
    assert code.serial and 0 < code.chunk_rows < code.rows == 400


@pytest.mark.parametrize("tiling", TILINGS)
def test_reduction_first_mean_with_iota_and_finalize(tiling):
    # sum over axis 0 of x * row_index, divided by the count: finalize runs on the parallel
    # dims, which come after the reduced one in the kernel's value shapes
    x = sample((64, 5, 40), "float32")
    body = (K.ScalarOp("cast", (K.IterIndex(0),), "float32"),
            K.ScalarOp("mul", (K.Input(0), K.Result(0)), "float32"))
    fin = K.Epilogue((K.ScalarOp("div", (K.Acc(0), K.Const(64.0, "float32")), "float32"),
                      K.ScalarOp("cast", (K.IterIndex(2),), "float32"),
                      K.ScalarOp("add", (K.Result(0), K.Result(1)), "float32")),
                     (K.Result(2),))
    k, out_shape = reduce_kernel(x.shape, (0,), "sum", "float32", finalize=fin, body=body,
                                 yields=(K.Result(1),))
    got = run(k, {0: x}, {1: (out_shape, "float32")}, tiling)[1]
    rows = np.arange(64, dtype=np.float32).reshape(64, 1, 1)
    want = (x * rows).sum(axis=0) / 64 + np.arange(40, dtype=np.float32)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert _code(k).serial


def test_f32_sums_streamed_in_chunks_accumulate_in_float64():
    # 2M elements through a body, so the sum is streamed in chunks: chunk sums must not be
    # added one after another in float32
    rng = np.random.default_rng(7)
    x = (0.1 + rng.uniform(0, 1e-3, (2048, 1024))).astype(np.float32)
    body = (K.ScalarOp("mul", (K.Input(0), K.Const(3.0, "float32")), "float32"),)
    want = (x.astype(np.float64) * 3).sum()
    for axes, ref in (((0, 1), want), ((0,), (x.astype(np.float64) * 3).sum(axis=0))):
        k, out_shape = reduce_kernel(x.shape, axes, "sum", "float32", body=body,
                                     yields=(K.Result(0),))
        code = _code(k)
        assert code.serial and code.chunk_rows > 0
        assert any(v.dtype == "float64" for v in code.values if v.kind == 1)
        got = run(k, {0: x}, {1: (out_shape, "float32")})[1]
        # within a chunk of 32 rows numpy adds rows in float32, as its own x.sum(0) does
        np.testing.assert_allclose(got, ref, rtol=2e-7 if axes == (0, 1) else 3e-6)


def test_f32_full_sum_without_body_is_one_pairwise_numpy_sum():
    x = np.full(3_000_000, 0.1, np.float32)
    k, out_shape = reduce_kernel(x.shape, (0,), "sum", "float32")
    got = run(k, {0: x}, {1: (out_shape, "float32")})[1]
    np.testing.assert_allclose(got, x.astype(np.float64).sum(), rtol=1e-6)
