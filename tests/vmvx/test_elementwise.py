"""vmvx generic parallel kernels against numpy: every opcode, dtypes, maps, tilings."""

from __future__ import annotations

import math

import numpy as np
import pytest
from harness import TILINGS, ident, operand, run, unary_kernel

from hal_core.compiler import kernel_ir as K

ALL = ("float32", "float16", "float64", "int8", "int16", "int32", "int64", "uint8", "bool")
FLOATS = ("float32", "float16", "float64")
INTS = ("int8", "int16", "int32", "int64", "uint8")
RNG = np.random.default_rng(0)


def sample(shape, dtype, lo=-20, hi=20):
    if dtype == "bool":
        return RNG.random(shape) < 0.5
    if dtype in FLOATS:
        return (RNG.standard_normal(shape) * 3).astype(dtype)
    if dtype == "uint8":
        lo = max(lo, 0)
    return RNG.integers(lo, hi, shape).astype(dtype)


def binary_kernel(opcode, shape, dtype, out_dtype=None, maps=None, in_shapes=None):
    in_shapes = in_shapes or (shape, shape)
    a, b = operand(0, in_shapes[0], dtype), operand(1, in_shapes[1], dtype)
    o = operand(2, shape, out_dtype or dtype)
    maps = maps or (K.IndexingMap.identity(len(shape)),) * 2
    return K.GenericKernel(opcode, tuple(shape), ("parallel",) * len(shape),
                           (K.MappedOperand(a, maps[0]), K.MappedOperand(b, maps[1])),
                           (ident(o),), (K.ScalarOp(opcode, (K.Input(0), K.Input(1)), o.dtype),),
                           (K.Result(0),))


def check(got, want, dtype):
    if dtype == "float16":
        np.testing.assert_allclose(got.astype(np.float32), want.astype(np.float32),
                                   rtol=2e-3, atol=2e-3, equal_nan=True)
    elif dtype in FLOATS:
        np.testing.assert_allclose(got, want, rtol=1e-6 if dtype == "float32" else 1e-12,
                                   atol=1e-6, equal_nan=True)
    else:
        np.testing.assert_array_equal(got, want)


BINARY = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "max": np.maximum, "min": np.minimum,
}
CMP = {"cmp_eq": np.equal, "cmp_ne": np.not_equal, "cmp_lt": np.less, "cmp_le": np.less_equal,
       "cmp_gt": np.greater, "cmp_ge": np.greater_equal}


# Kernel IR defines add/sub/mul on numbers only (validate rejects them on bool).
BINARY_CASES = [(op, dt) for op in [*BINARY, *CMP] for dt in ALL
                if not (dt == "bool" and op in ("add", "sub", "mul"))]


@pytest.mark.parametrize("opcode, dtype", BINARY_CASES)
def test_binary_ops(opcode, dtype):
    shape = (7, 5)
    a, b = sample(shape, dtype), sample(shape, dtype)
    out_dt = "bool" if opcode in CMP else dtype
    got = run(binary_kernel(opcode, shape, dtype, out_dt), {0: a, 1: b},
              {2: (shape, out_dt)})[2]
    check(got, {**BINARY, **CMP}[opcode](a, b).astype(out_dt), out_dt)


@pytest.mark.parametrize("dtype", INTS)
def test_integer_division_truncates_toward_zero(dtype):
    shape = (4, 9)
    a = sample(shape, dtype, -50, 50)
    b = sample(shape, dtype, -7, 7)
    b[0, :3] = 0
    got = run(binary_kernel("div", shape, dtype), {0: a, 1: b}, {2: (shape, dtype)})[2]
    want = [0 if y == 0 else math.trunc(int(x) / int(y)) for x, y in zip(a.flat, b.flat)]
    np.testing.assert_array_equal(got, np.array(want).reshape(shape).astype(dtype))


@pytest.mark.parametrize("dtype", ("int8", "int32", "int64"))
def test_integer_pow_with_negative_exponents(dtype):
    a = np.array([2, -2, 1, -1, 3, 0, 1, -1, 5], dtype)
    e = np.array([3, 3, -4, -3, -1, 2, 0, -2, 0], dtype)
    got = run(binary_kernel("pow", (9,), dtype), {0: a, 1: e}, {2: ((9,), dtype)})[2]
    np.testing.assert_array_equal(got, np.array([8, -8, 1, -1, 0, 0, 1, 1, 1], dtype))


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("opcode", ["div", "pow"])
def test_float_div_pow(opcode, dtype):
    a = np.abs(sample((6, 6), dtype)) + 0.5
    b = sample((6, 6), dtype)
    got = run(binary_kernel(opcode, (6, 6), dtype), {0: a, 1: b}, {2: ((6, 6), dtype)})[2]
    ref = {"div": np.true_divide, "pow": np.power}[opcode]
    check(got, ref(a.astype(np.float64), b.astype(np.float64)).astype(dtype), dtype)


UNARY_FLOAT = {
    "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "rsqrt": lambda x: 1 / np.sqrt(x),
    "tanh": np.tanh, "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "erf": np.vectorize(math.erf), "floor": np.floor, "ceil": np.ceil, "round": np.rint,
}


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("opcode", sorted(UNARY_FLOAT))
def test_unary_float_ops(opcode, dtype):
    x = sample((5, 8), dtype)
    x[0, :4] = np.array([0.5, -0.5, 2.5, -1.5], dtype)  # round half to even
    if opcode in ("log", "sqrt", "rsqrt"):
        x = np.abs(x) + np.asarray(0.1, dtype)
    got = run(unary_kernel(opcode, x.shape, dtype), {0: x}, {1: (x.shape, dtype)})[1]
    check(got, UNARY_FLOAT[opcode](x.astype(np.float64)).astype(dtype), dtype)


@pytest.mark.parametrize("dtype", [d for d in ALL if d != "bool"])
@pytest.mark.parametrize("opcode", ["neg", "abs", "relu"])
def test_unary_numeric_ops(opcode, dtype):
    x = sample((3, 11), dtype)
    ref = {"neg": np.negative, "abs": np.abs, "relu": lambda v: np.maximum(v, 0)}[opcode]
    got = run(unary_kernel(opcode, x.shape, dtype), {0: x}, {1: (x.shape, dtype)})[1]
    check(got, ref(x).astype(dtype), dtype)


@pytest.mark.parametrize("dtype", ("bool", "int8", "uint8", "int32", "int64"))
def test_logical_ops(dtype):
    a, b = sample((4, 4), dtype), sample((4, 4), dtype)
    for opcode, ref in (("and", np.bitwise_and), ("or", np.bitwise_or)):
        got = run(binary_kernel(opcode, (4, 4), dtype), {0: a, 1: b}, {2: ((4, 4), dtype)})[2]
        np.testing.assert_array_equal(got, ref(a, b))
    got = run(unary_kernel("not", (4, 4), dtype), {0: a}, {1: ((4, 4), dtype)})[1]
    np.testing.assert_array_equal(got, np.invert(a))


CASTS = [(s, d) for s in ALL for d in ALL if s != d]


@pytest.mark.parametrize("src,dst", CASTS)
def test_casts(src, dst):
    x = sample((5, 6), src, -100, 100)
    got = run(unary_kernel("cast", x.shape, src, dst), {0: x}, {1: (x.shape, dst)})[1]
    if src in FLOATS and dst not in FLOATS and dst != "bool":
        x = np.trunc(x)  # float -> int truncates toward zero
        if dst == "uint8":
            x = np.abs(x)
            got = run(unary_kernel("cast", x.shape, src, dst), {0: x.astype(src)},
                      {1: (x.shape, dst)})[1]
    check(got, x.astype(dst), dst)


@pytest.mark.parametrize("dtype", ALL)
def test_select_and_clip(dtype):
    shape = (6, 7)
    c, a, b = sample(shape, "bool"), sample(shape, dtype), sample(shape, dtype)
    ops = [operand(0, shape, "bool"), operand(1, shape, dtype), operand(2, shape, dtype)]
    o = operand(3, shape, dtype)
    k = K.GenericKernel("sel", shape, ("parallel",) * 2, tuple(ident(x) for x in ops),
                        (ident(o),), (K.ScalarOp("select", (K.Input(0), K.Input(1), K.Input(2)),
                                                 dtype),), (K.Result(0),))
    got = run(k, {0: c, 1: a, 2: b}, {3: (shape, dtype)})[3]
    check(got, np.where(c, a, b), dtype)
    if dtype != "bool":
        lo, hi = (K.Const(-3, dtype), K.Const(5, dtype)) if dtype != "uint8" else \
            (K.Const(2, dtype), K.Const(9, dtype))
        k = K.GenericKernel("clip", shape, ("parallel",) * 2, (ident(ops[1]),), (ident(o),),
                            (K.ScalarOp("clip", (K.Input(0), lo, hi), dtype),), (K.Result(0),))
        got = run(k, {1: a}, {3: (shape, dtype)})[3]
        check(got, np.clip(a, lo.value, hi.value).astype(dtype), dtype)


@pytest.mark.parametrize("tiling", TILINGS)
def test_fused_chain_with_broadcast_and_tilings(tiling):
    # out = relu(a * b[None, :] + c[:, None] - 1.5) over a shape split into many workgroups
    shape = (300, 257)
    a = sample(shape, "float32")
    b = sample((shape[1],), "float32")
    c = sample((shape[0], 1), "float32")
    ins = (ident(operand(0, shape, "float32")),
           K.MappedOperand(operand(1, b.shape, "float32"), K.IndexingMap.of_dims(2, (1,))),
           K.MappedOperand(operand(2, c.shape, "float32"), K.IndexingMap.of_dims(2, (0, None))))
    body = (K.ScalarOp("mul", (K.Input(0), K.Input(1)), "float32"),
            K.ScalarOp("add", (K.Result(0), K.Input(2)), "float32"),
            K.ScalarOp("sub", (K.Result(1), K.Const(1.5, "float32")), "float32"),
            K.ScalarOp("relu", (K.Result(2),), "float32"))
    k = K.GenericKernel("chain", shape, ("parallel",) * 2, ins,
                        (ident(operand(3, shape, "float32")),), body, (K.Result(3),))
    got = run(k, {0: a, 1: b, 2: c}, {3: (shape, "float32")}, tiling)[3]
    np.testing.assert_allclose(got, np.maximum(a * b + c - 1.5, 0), rtol=1e-6)


@pytest.mark.parametrize("tiling", TILINGS)
def test_large_1d_add_is_chunked_and_tiled(tiling):
    n = 300_001
    a, b = sample((n,), "float32"), sample((n,), "float32")
    k = binary_kernel("add", (n,), "float32")
    got = run(k, {0: a, 1: b}, {2: ((n,), "float32")}, tiling)[2]
    np.testing.assert_array_equal(got, a + b)


def test_transpose_reverse_slice_and_offset_window():
    # out[1:4, 2:7] = transpose(x)[::-1, ::2] -- a window write (concat/pad interior)
    x = sample((10, 3), "int32")
    src = x.T[::-1, ::2]  # shape (3, 5)
    m = K.IndexingMap(2, (K.AffineExpr((0, 2), 0), K.AffineExpr((-1, 0), 2)))
    out_map = K.IndexingMap(2, (K.AffineExpr((1, 0), 1), K.AffineExpr((0, 1), 2)))
    k = K.GenericKernel("win", (3, 5), ("parallel",) * 2,
                        (K.MappedOperand(operand(0, (10, 3), "int32"), m),),
                        (K.MappedOperand(operand(1, (5, 8), "int32"), out_map),), (),
                        (K.Input(0),))
    want = np.frombuffer(np.full(5 * 8 * 4, 0xAB, np.uint8).tobytes(), np.int32).reshape(5, 8)
    want = want.copy()
    want[1:4, 2:7] = src
    for tiling in TILINGS:
        got = run(k, {0: x}, {1: ((5, 8), "int32")}, tiling)[1]
        np.testing.assert_array_equal(got, want)


def test_fill_with_constant_and_iter_index():
    shape = (4, 6)
    k = K.GenericKernel("iota", shape, ("parallel",) * 2, (),
                        (ident(operand(0, shape, "int64")), ident(operand(1, shape, "float32"))),
                        (K.ScalarOp("mul", (K.IterIndex(0), K.Const(10, "int64")), "int64"),
                         K.ScalarOp("add", (K.Result(0), K.IterIndex(1)), "int64")),
                        (K.Result(1), K.Const(2.5, "float32")))
    for tiling in TILINGS:
        got = run(k, {}, {0: (shape, "int64"), 1: (shape, "float32")}, tiling)
        np.testing.assert_array_equal(got[0], np.arange(4)[:, None] * 10 + np.arange(6))
        np.testing.assert_array_equal(got[1], np.full(shape, 2.5, np.float32))


@pytest.mark.parametrize("shape", [(0,), (3, 0), (0, 5), (1, 1), (1, 7, 1)])
def test_zero_size_and_size_one_dims(shape):
    a, b = sample(shape, "float32"), sample(shape, "float32")
    got = run(binary_kernel("add", shape, "float32"), {0: a, 1: b}, {2: (shape, "float32")})[2]
    np.testing.assert_array_equal(got, a + b)


def test_size_one_broadcast_operand():
    a = sample((5, 1, 3), "int16")
    b = sample((1, 4, 3), "int16")
    maps = (K.IndexingMap.of_dims(3, (0, None, 2)), K.IndexingMap.of_dims(3, (None, 1, 2)))
    k = binary_kernel("sub", (5, 4, 3), "int16", maps=maps, in_shapes=(a.shape, b.shape))
    got = run(k, {0: a, 1: b}, {2: ((5, 4, 3), "int16")})[2]
    np.testing.assert_array_equal(got, a - b)


def test_in_place_elementwise_alias():
    from harness import compile_one
    x = sample((1000,), "float32")
    op = operand(0, x.shape, "float32")
    k = K.GenericKernel("inplace", x.shape, ("parallel",), (ident(op),), (ident(op),),
                        (K.ScalarOp("exp", (K.Input(0),), "float32"),
                         K.ScalarOp("mul", (K.Result(0), K.Const(2.0, "float32")), "float32")),
                        (K.Result(1),))
    variant, exe = compile_one(k)
    buf = np.frombuffer(x.tobytes(), np.uint8).copy()
    n = variant.entry_points[0].workgroup_count[0]
    exe.run(0, (n, 1, 1), 0, n, [buf], ())
    np.testing.assert_allclose(np.frombuffer(buf.tobytes(), np.float32), np.exp(x) * 2,
                               rtol=1e-6)


def test_operands_sharing_one_binding_at_offsets():
    a, b = sample((16,), "float64"), sample((16,), "float64")
    x, y = operand(0, (16,), "float64"), K.KernelOperand(0, (16,), "float64", 128)
    o = K.KernelOperand(0, (16,), "float64", 256)
    k = K.GenericKernel("shared", (16,), ("parallel",), (ident(x), ident(y)), (ident(o),),
                        (K.ScalarOp("mul", (K.Input(0), K.Input(1)), "float64"),), (K.Result(0),))
    from harness import compile_one
    _, exe = compile_one(k)
    buf = np.zeros(384, np.uint8)
    buf[:128] = np.frombuffer(a.tobytes(), np.uint8)
    buf[128:256] = np.frombuffer(b.tobytes(), np.uint8)
    exe.run(0, (1, 1, 1), 0, 1, [buf], ())
    np.testing.assert_array_equal(np.frombuffer(buf[256:].tobytes(), np.float64), a * b)
