"""BitShift, Mod, RMSNormalization, Trilu, Range, EyeLike, Swish, CumSum, OneHot."""

from __future__ import annotations

import math

import numpy as np

from hal_core.ir.builder import Tensor
from hal_onnx.ops.common import _axis, _ints, _scalar, _static_shape, conv


@conv("BitShift")
def _bitshift(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    if x.dtype.startswith("f") or x.dtype == "i1":
        raise ctx.error("BitShift is defined on integers")
    shift = np.broadcast_to(ctx.const(ins[1], "BitShift's shift amounts").astype(np.int64),
                            np.broadcast_shapes(x.shape, np.shape(ins[1])))
    dt = np.dtype(x.type.numpy_dtype)
    bits = dt.itemsize * 8
    udt = np.dtype(f"u{dt.itemsize}")
    valid = (shift >= 0) & (shift < bits)
    safe = np.where(valid, shift, 0).astype(udt)
    zero = _scalar(ctx, 0, x)
    if attrs["direction"] == "LEFT":  # x << s is x * 2**s, wrapping; 0 when s is out of range
        factor = np.where(valid, np.left_shift(np.ones_like(safe), safe), 0).astype(udt)
        return x * ctx.tensor(factor.view(dt))
    signed = dt.kind == "i"
    small = valid & (shift < bits - 1) if signed else valid  # 2**s representable in dt
    f = np.left_shift(np.ones_like(safe), np.where(small, safe, 0).astype(udt)).view(dt)
    d = ctx.tensor(f)
    q = x / d  # truncates toward zero
    if signed:  # arithmetic shift: floor division, and -1 / 0 once every bit is shifted out
        q = ctx.fb.op("select", (x < zero) & (q * d).ne(x), q - _scalar(ctx, 1, x), q)
        sign = ctx.fb.op("select", x < zero, _scalar(ctx, -1, x), zero)
        return ctx.fb.op("select", ctx.tensor(small), q, sign)
    return ctx.fb.op("select", ctx.tensor(valid), q, zero)


@conv("Mod")
def _mod(ctx, ins, attrs):
    a, b = ctx.tensor(ins[0]), ctx.tensor(ins[1])
    if a.dtype.startswith("f"):
        q = a / b
        trunc = ctx.fb.op("select", q < _scalar(ctx, 0, q), q.ceil(), q.floor())
        r = a - trunc * b
        if attrs.get("fmod", 0):
            return r
        # a - floor(a / b) * b differs from ONNX's (numpy's) float mod on inf/nan/zero edge
        # cases (tested by the node conformance cases): refused rather than answered wrongly
        raise ctx.error("Mod of floats with fmod=0 is not supported (fmod=1 is)")
    r = a - (a / b) * b  # integer div truncates, so r has a's sign (C's fmod)
    if attrs.get("fmod", 0) or a.dtype.startswith("u"):
        return r
    zero = _scalar(ctx, 0, r)
    fix = r.ne(zero) & ((r < zero) ^ (b < zero))  # Python's mod takes the divisor's sign
    return ctx.fb.op("select", fix, r + b, r)


@conv("RMSNormalization")
def _rmsnorm(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    axis = _axis(attrs.get("axis", -1), x.ndim, ctx)
    eps = attrs.get("epsilon", 1e-5)
    if attrs.get("stash_type", 1) != 1 or x.dtype != "f32":
        raise ctx.error("RMSNormalization is supported for f32 with stash_type=1")
    axes = tuple(range(axis, x.ndim))
    ms = (x * x).mean(axes, keepdims=True)
    return x * (ms + _scalar(ctx, eps, x)).rsqrt() * ctx.tensor(ins[1])


@conv("Trilu")
def _trilu(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    k = int(ctx.const(ins[1], "Trilu's k").reshape(-1)[0]) if len(ins) > 1 and \
        ins[1] is not None else 0
    n, m = x.shape[-2:]
    rows, cols = np.arange(n)[:, None], np.arange(m)[None, :]
    keep = (cols - rows >= k) if attrs.get("upper", 1) else (cols - rows <= k)
    return ctx.fb.op("select", ctx.tensor(keep), x, _scalar(ctx, 0, x))


@conv("Range")
def _range(ctx, ins, attrs):
    start, limit, delta = (ctx.const(v, "Range's bounds") for v in ins)
    return np.arange(start, limit, delta, dtype=np.asarray(start).dtype)


@conv("ConstantOfShape")
def _constant_of_shape(ctx, ins, attrs):
    shape = _ints(ctx.const(ins[0], "ConstantOfShape's shape"))
    value = np.asarray(attrs.get("value", np.zeros(1, np.float32)))
    return np.full(shape, value.reshape(-1)[0], dtype=value.dtype)


@conv("EyeLike")
def _eyelike(ctx, ins, attrs):
    from hal_onnx.importer import ir_dtype

    x = ins[0]
    dt = ir_dtype(attrs["dtype"], ctx.node_desc) if "dtype" in attrs else \
        (x.dtype if isinstance(x, Tensor) else ctx.tensor(x).dtype)
    from hal_core.ir.types import numpy_dtype_name

    return np.eye(*_static_shape(x), k=attrs.get("k", 0), dtype=numpy_dtype_name(dt))


@conv("Swish")
def _swish(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    return x * (x * _scalar(ctx, attrs.get("alpha", 1.0), x)).sigmoid()


@conv("CumSum")
def _cumsum(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    axis = _axis(int(ctx.const(ins[1], "CumSum's axis").reshape(-1)[0]), x.ndim, ctx)
    n = x.shape[axis]
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    # out[..., j] = sum_i x[..., i] * tri[i, j]
    if attrs.get("reverse", 0):
        tri = (i > j) if attrs.get("exclusive", 0) else (i >= j)
    else:
        tri = (i < j) if attrs.get("exclusive", 0) else (i <= j)
    perm = [a for a in range(x.ndim) if a != axis] + [axis]
    inv = list(np.argsort(perm))
    xt = x.transpose(perm) if axis != x.ndim - 1 else x
    flat = xt.reshape(max(1, math.prod(xt.shape[:-1])), n)
    y = (flat @ ctx.tensor(tri.astype(x.type.numpy_dtype))).reshape(xt.shape)
    return y.transpose(inv) if axis != x.ndim - 1 else y


@conv("OneHot")
def _onehot(ctx, ins, attrs):
    idx = ctx.tensor(ins[0])
    depth = int(ctx.const(ins[1], "OneHot's depth").reshape(-1)[0])
    values = ctx.const(ins[2], "OneHot's values")
    axis = attrs.get("axis", -1)
    rank = idx.ndim + 1
    axis = _axis(axis, rank, ctx)
    idx = idx.astype("i64") if idx.dtype != "i64" else idx
    if idx.dtype.startswith("f"):
        idx = idx.astype("i64")
    idx = ctx.fb.op("select", idx < _scalar(ctx, 0, idx), idx + _scalar(ctx, depth, idx), idx)
    shape = list(idx.shape)
    shape.insert(axis, 1)
    iota = np.arange(depth).reshape([depth if a == axis else 1 for a in range(rank)])
    hit = idx.reshape(shape).eq(ctx.tensor(iota))
    return ctx.fb.op("select", hit, ctx.tensor(values[1:2].reshape(())),
                     ctx.tensor(values[0:1].reshape(())))
