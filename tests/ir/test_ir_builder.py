"""Programs written with the builder evaluate like the same numpy code."""

from __future__ import annotations

import numpy as np
import pytest

from hal_core import ir
from hal_core.errors import UsageError, VerificationError
from hal_core.ir import ops

rng = np.random.default_rng(7)


def run(module: ir.Module, *inputs: np.ndarray, name: str = "main") -> list[np.ndarray]:
    again = ir.parse(str(module))  # every builder program also survives the text form
    assert again == module
    return ir.evaluate(again[name], *inputs)


def test_mlp() -> None:
    b = ir.Builder()
    with b.function("main", [("x", (8, 16), "f32")]) as f:
        (x,) = f.args
        w1 = rng.standard_normal((16, 32)).astype(np.float32)
        w2 = rng.standard_normal((32, 10)).astype(np.float32)
        h = (x @ f.constant(w1) + 0.5).relu()
        y = (h @ w2).softmax(axis=-1)
        f.ret(y, y.argmax(axis=1))
    m = b.module()
    x = rng.standard_normal((8, 16)).astype(np.float32)
    h = np.maximum(x @ w1 + 0.5, 0) @ w2
    e = np.exp(h - h.max(1, keepdims=True))
    want = e / e.sum(1, keepdims=True)
    got, idx = run(m, x)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(idx, want.argmax(1))
    assert idx.dtype == np.int64


def test_operators_scalars_and_methods() -> None:
    b = ir.Builder()
    with b.function("main", [("x", (3, 4), "f32"), ("y", (4,), "f32")]) as f:
        x, y = f.args
        outs = [2 - x, 1 / (x.abs() + 1), 2.0 ** x, -x * y, np.ones(4, np.float32) + y,
                x.sum(), x.mean(axis=0, keepdims=True), x.max(1), x.min(), x.prod(axis=(0, 1)),
                x.T, x.transpose(1, 0).reshape(2, -1), x.exp().log(), x.clip(-0.5, 0.5),
                x.astype("i32"), x.astype(np.float16), x.broadcast_to((2, 3, 4)),
                ops.where((x > 0) & ~(x > 1), x, 0.0), ops.where(x.le(0) | x.eq(1), 1.0, y),
                ops.maximum(x, y), ops.minimum(0.0, x), x.tanh(),
                x.sigmoid(), x.floor() + x.ceil() + x.round(), x.log_softmax(0)]
        f.ret(*outs)
    x = rng.standard_normal((3, 4)).astype(np.float32)
    y = rng.standard_normal(4).astype(np.float32)
    want = [2 - x, 1 / (np.abs(x) + 1), 2.0 ** x, -x * y, 1 + y, x.sum(),
            x.mean(0, keepdims=True), x.max(1), x.min(), x.prod(), x.T, x.T.reshape(2, -1),
            np.log(np.exp(x)), np.clip(x, -0.5, 0.5), x.astype(np.int32), x.astype(np.float16),
            np.broadcast_to(x, (2, 3, 4)), np.where((x > 0) & ~(x > 1), x, 0),
            np.where((x <= 0) | (x == 1), 1.0, y), np.maximum(x, y), np.minimum(0, x),
            np.tanh(x), 1 / (1 + np.exp(-x)), np.floor(x) + np.ceil(x) + np.round(x),
            x - np.log(np.exp(x).sum(0, keepdims=True))]
    got = run(b.module(), x, y)
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        assert g.shape == np.shape(w), i
        np.testing.assert_allclose(g.astype(np.float64), np.asarray(w, np.float64),
                                   rtol=1e-3, atol=1e-5, err_msg=f"output {i}")


@pytest.mark.parametrize("key", [
    (slice(1, None), slice(None, None, -1)), 0, (-1, 2), (Ellipsis, 2), (slice(None, None, -2),),
    (slice(-2, 0, -1), slice(1, 3)), (1, Ellipsis), (slice(5, 9),), (slice(None), slice(3, 3)),
])
def test_indexing_like_numpy(key) -> None:
    b = ir.Builder()
    with b.function("main", [("x", (4, 5), "i32")]) as f:
        f.ret(f.args[0][key])
    x = np.arange(20, dtype=np.int32).reshape(4, 5)
    (got,) = run(b.module(), x)
    np.testing.assert_array_equal(got, x[key])
    assert got.shape == x[key].shape


def test_conv_pool_network() -> None:
    w = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)
    dw = rng.standard_normal((8, 1, 3, 3)).astype(np.float32)
    bias = rng.standard_normal(8).astype(np.float32)
    b = ir.Builder()
    with b.function("main", [("img", (2, 3, 16, 16), "f32")]) as f:
        (img,) = f.args
        y = ops.conv2d(img, w, bias, strides=2, padding=1).relu()
        y = ops.conv2d(y, dw, padding=(1, 1), groups=8)
        y = ops.max_pool2d(y, 2, strides=2)
        f.ret(ops.global_avg_pool2d(y).reshape(2, 8))
    m = b.module()
    conv = next(op for op in m["main"].body if op.name == "conv2d")
    assert conv.name == "conv2d" and conv.attrs["strides"] == (2, 2)
    assert conv.attrs["padding"] == (1, 1, 1, 1) and len(conv.operands) == 3
    img = rng.standard_normal((2, 3, 16, 16)).astype(np.float32)
    (got,) = run(m, img)
    from ir_cases import naive_conv2d, naive_pool

    want = np.maximum(naive_conv2d(img, w, bias, (2, 2), (1, 1, 1, 1)), 0)
    want = naive_conv2d(want, dw, None, (1, 1), (1, 1, 1, 1), (1, 1), 8)
    want = naive_pool(want, (2, 2), (2, 2)).mean((2, 3))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_data_movement_functions() -> None:
    b = ir.Builder()
    with b.function("main", [("x", (2, 3), "f32"), ("i", (4,), "i64")]) as f:
        x, i = f.args
        f.ret(ops.concat([x, x * 2], axis=0), ops.pad(x, [0, 1], [1, 0], 9.0),
              ops.gather(x, i, axis=1), ops.take(x, [1, 0]), ops.slice(x, [0, 2], [2, 0], [1, -1]),
              ops.transpose(x), ops.expand(x[:, :1], (2, 5)),
              ops.cast(x > 0, "u8"), ops.matmul(x, x, transpose_b=True))
    x = rng.standard_normal((2, 3)).astype(np.float32)
    i = np.array([2, 0, -1, 1])
    got = run(b.module(), x, i)
    want = [np.concatenate([x, x * 2]), np.pad(x, ((0, 1), (1, 0)), constant_values=9),
            np.take(x, i, 1), x[[1, 0]], x[0:2, 2:0:-1], x.T, np.broadcast_to(x[:, :1], (2, 5)),
            (x > 0).astype(np.uint8), x @ x.T]
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-5)


def test_several_functions_and_naming() -> None:
    b = ir.Builder()
    with b.function("double", [("x", (2,), "f32")]) as f:
        f.ret(f.args[0] * 2)
    with b.function("main") as f:
        x = f.arg("input", (2,), "i64")
        f.ret(x + 1)
    m = b.module()
    assert [fn.name for fn in m] == ["double", "main"]
    assert m["main"].args[0].name == "input"
    assert [op.result.name for op in m["double"].body] == ["0", "1"]
    assert "double" in m and "triple" not in m
    with pytest.raises(UsageError, match=r"no function @triple in the module; it has: @double"):
        m["triple"]
    (got,) = run(m, np.array([1, 2]), name="main")
    np.testing.assert_array_equal(got, [2, 3])


def test_builder_misuse() -> None:
    b = ir.Builder()
    with pytest.raises(UsageError, match="has no return"), b.function("main") as f:
        pass
    with pytest.raises(UsageError, match="already in this module"):
        for _ in range(2):
            with b.function("f", [("x", (1,), "f32")]) as f:
                f.ret(f.args[0])
    with b.function("g", [("x", (1,), "f32")]) as g:
        gx = g.args[0]
        g.ret(gx)
    with pytest.raises(UsageError, match="must be a Tensor of @h"), \
            b.function("h", [("x", (1,), "f32")]) as h:
        h.ret(h.args[0] + gx)
    with pytest.raises(UsageError, match="declared twice"):
        ir.FunctionBuilder("k", [("x", (1,), "f32"), ("x", (1,), "f32")])
    with pytest.raises(UsageError, match="unsupported index"), \
            b.function("m", [("x", (2,), "f32")]) as f:
        f.args[0][None]
    with pytest.raises(VerificationError, match=r"unknown op 'matmull'; did you mean 'matmul'"), \
            b.function("n", [("x", (2,), "f32")]) as f:
        f.op("matmull", f.args[0])


def test_constant_dtype_defaults() -> None:
    b = ir.Builder()
    with b.function("main") as f:
        f.ret(f.constant(1.5), f.constant([1, 2]), f.constant(True), f.constant(3, "u8"),
              f.constant(np.float64(2)))
    types = [t.dtype for t in b.module()["main"].result_types]
    assert types == ["f32", "i64", "i1", "u8", "f64"]


def test_constant_dtype_given_as_numpy_type() -> None:
    f = ir.FunctionBuilder("main")
    assert f.constant(1, np.float32).dtype == "f32"
    assert f.constant([1, 2], np.dtype("int8")).dtype == "i8"


@pytest.mark.parametrize("make", [
    lambda f, x: f.constant(300, "i8"),
    lambda f, x: f.constant([1, [2]]),
    lambda f, x: x + [1, [2]],
], ids=["out-of-range", "ragged", "ragged-operand"])
def test_unrepresentable_constants_are_verification_errors(make) -> None:
    f = ir.FunctionBuilder("main", [("x", (2,), "f32")])
    with pytest.raises(VerificationError, match="in @main: cannot make a constant"):
        make(f, f.args[0])


def test_zero_size_dimensions() -> None:
    b = ir.Builder()
    with b.function("main", [("x", (0, 3), "f32"), ("y", (3, 0), "f32"), ("z", (2, 3), "f32")]) \
            as f:
        x, y, z = f.args
        f.ret(x + 1, x.sum(0), x.max(0), z @ y, y @ x, ops.concat([x, z]), z[:, 3:],
              ops.pad(x, [1, 0], [0, 0], 2.0))
    x, y = np.zeros((0, 3), np.float32), np.zeros((3, 0), np.float32)
    z = rng.standard_normal((2, 3)).astype(np.float32)
    want = [x + 1, x.sum(0), np.full(3, -np.inf), z @ y, y @ x, np.concatenate([x, z]), z[:, 3:],
            np.full((1, 3), 2.0)]
    for g, w in zip(run(b.module(), x, y, z), want, strict=True):
        np.testing.assert_array_equal(g, w)


def test_operation_create_users_and_evaluate_op() -> None:
    a = ir.Value("a", ir.TensorType((2, 3), "f32"))
    s = ir.Operation.create("reduce_sum", [a], "s", {"axes": [1]})
    assert s.attrs == {"axes": (1,), "keepdims": False}
    assert s.type == ir.TensorType((2,), "f32")
    assert str(s) == "%s = reduce_sum %a {axes = [1]} : (tensor<2x3xf32>) -> tensor<2xf32>"
    e = ir.Operation.create("exp", [s.result], "e")
    fn = ir.Function("main", (a,), (s, e), (e.result,))
    ir.verify_function(fn)
    assert fn.users(a) == [s] and fn.users(s.result) == [e] and fn.users(e.result) == []
    assert fn.defining_op(e.result) is e and fn.defining_op(a) is None
    np.testing.assert_allclose(ir.evaluate_op(s, [np.ones((2, 3), np.float32)]), [3, 3])
    with pytest.raises(VerificationError, match=r"op 'matmul' \(result %m\): operand #1 \(rhs\)"):
        ir.Operation.create("matmul", [a, a], "m")


def test_truth_value_is_refused_and_iteration_follows_numpy() -> None:
    b = ir.Builder()
    with b.function("main", [("x", (3, 2), "f32")]) as f:
        (x,) = f.args
        with pytest.raises(UsageError, match="has no truth value"):
            bool(x > 0)
        rows = list(x)
        assert len(x) == 3 and [r.shape for r in rows] == [(2,)] * 3
        f.ret(*rows)
    data = rng.standard_normal((3, 2)).astype(np.float32)
    for got, want in zip(run(b.module(), data), data, strict=True):
        np.testing.assert_array_equal(got, want)


def test_numpy_integers_are_accepted_where_ints_are() -> None:
    b = ir.Builder()
    with b.function("main", [("x", (2, 3), "f32")]) as f:
        (x,) = f.args
        i = np.int64(1)
        f.ret(x.reshape(np.int64(6)), x.reshape(np.array([3, 2])), x.transpose(np.array([1, 0])),
              x.sum(axis=i), x[i], x[:, np.int32(2)])
        with pytest.raises(UsageError, match=r"reshape\(\) takes integers, found \[2.5\]"):
            x.reshape(2.5)
    data = rng.standard_normal((2, 3)).astype(np.float32)
    want = [data.reshape(6), data.reshape(3, 2), data.T, data.sum(1), data[1], data[:, 2]]
    for g, w in zip(run(b.module(), data), want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-6)


def test_free_functions_refuse_malformed_windows_and_indices() -> None:
    from hal_core.ir import ops

    f = ir.FunctionBuilder("main", [("x", (1, 2, 4, 4), "f32"), ("v", (5,), "f32")])
    x, v = f.args
    with pytest.raises(UsageError, match="kernel must be an int or a pair"):
        ops.max_pool2d(x, None)
    with pytest.raises(UsageError, match="padding must be an int, a pair"):
        ops.avg_pool2d(x, 2, padding=None)
    with pytest.raises(VerificationError, match="cannot make a constant of element type i64"):
        ops.gather(v, [0, [1]])
    assert ops.gather(v, np.array([1, 2], np.int32)).dtype == "f32"
