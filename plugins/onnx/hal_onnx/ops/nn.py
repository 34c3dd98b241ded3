"""MatMul, Gemm, Conv, pooling, normalisation, LRN, Softmax."""

from __future__ import annotations

import math

import numpy as np

from hal_core.ir.builder import Tensor
from hal_onnx.ops.common import _auto_pads, _axis, _channel_shape, _op, _scalar, _to_2d, conv


@conv("MatMul")
def _matmul(ctx, ins, attrs):
    a, b = ctx.tensor(ins[0]), ctx.tensor(ins[1])
    squeeze_a = a.ndim == 1
    squeeze_b = b.ndim == 1
    if squeeze_a:
        a = a.reshape(1, a.shape[0])
    if squeeze_b:
        b = b.reshape(b.shape[0], 1)
    y = a @ b
    if squeeze_a or squeeze_b:
        shape = y.shape[:-2] + (() if squeeze_a else y.shape[-2:-1]) + \
            (() if squeeze_b else y.shape[-1:])
        y = y.reshape(shape)
    return y


@conv("Gemm")
def _gemm(ctx, ins, attrs):
    a, b = ctx.tensor(ins[0]), ctx.tensor(ins[1])
    y = ctx.fb.op("matmul", a, b, transpose_a=bool(attrs.get("transA", 0)),
                  transpose_b=bool(attrs.get("transB", 0)))
    alpha, beta = attrs.get("alpha", 1.0), attrs.get("beta", 1.0)
    if alpha != 1.0:
        y = y * _scalar(ctx, alpha, y)
    if len(ins) > 2 and ins[2] is not None and beta != 0.0:
        c = ins[2]
        if isinstance(c, Tensor):
            y = y + (c * _scalar(ctx, beta, c) if beta != 1.0 else c)
        else:
            y = y + ctx.tensor((np.asarray(c) * beta).astype(c.dtype))
    return y


@conv("Conv")
def _conv(ctx, ins, attrs):
    x, one_d = _to_2d(ctx, ctx.tensor(ins[0]), "Conv")
    w = ctx.tensor(ins[1])
    if one_d:
        w = w.reshape(w.shape[0], w.shape[1], 1, w.shape[2])
    kernel = list(attrs.get("kernel_shape", w.shape[2:]))
    n = 1 if one_d else 2
    strides = list(attrs.get("strides", [1] * n))
    dil = list(attrs.get("dilations", [1] * n))
    pads = _auto_pads(ctx, attrs, x.shape[-n:], kernel[-n:] if one_d else kernel, strides, dil)
    if one_d:
        strides, dil, pads = [1] + strides, [1] + dil, [0, pads[0], 0, pads[1]]
    bias = [ctx.tensor(ins[2])] if len(ins) > 2 and ins[2] is not None else []
    y = ctx.fb.op("conv2d", x, w, *bias, strides=tuple(strides), padding=tuple(pads),
                  dilations=tuple(dil), groups=int(attrs.get("group", 1)))
    return y.reshape(y.shape[0], y.shape[1], y.shape[3]) if one_d else y


@conv("MaxPool", "AveragePool")
def _pool(ctx, ins, attrs):
    x, one_d = _to_2d(ctx, ctx.tensor(ins[0]), ctx.op_type)
    n = 1 if one_d else 2
    kernel = list(attrs["kernel_shape"])
    strides = list(attrs.get("strides", [1] * n))
    dil = list(attrs.get("dilations", [1] * n))
    if any(d != 1 for d in dil):
        raise ctx.error("pooling with dilations is not supported")
    if attrs.get("storage_order", 0) != 0:
        raise ctx.error("MaxPool storage_order=1 is not supported")
    ceil = bool(attrs.get("ceil_mode", 0))
    pads = _auto_pads(ctx, attrs, x.shape[-n:], kernel, strides, dil)
    if one_d:
        kernel, strides, pads = [1] + kernel, [1] + strides, [0, pads[0], 0, pads[1]]
    for k, lo, hi in ((kernel[0], pads[0], pads[2]), (kernel[1], pads[1], pads[3])):
        if lo >= k or hi >= k:
            raise ctx.error(f"{ctx.op_type} with padding {pads} not smaller than the kernel"
                            f" {kernel} is not supported")
    common = dict(kernel=tuple(kernel), strides=tuple(strides), padding=tuple(pads),
                  ceil_mode=ceil)
    if ctx.op_type == "MaxPool":
        y = ctx.fb.op("max_pool2d", x, **common)
    else:
        cip = bool(attrs.get("count_include_pad", 0))
        if cip and ceil:
            raise ctx.error("AveragePool with count_include_pad=1 and ceil_mode=1 is not"
                            " supported (the windows past the padding count differently)")
        y = ctx.fb.op("avg_pool2d", x, count_include_pad=cip, **common)
    return y.reshape(y.shape[0], y.shape[1], y.shape[3]) if one_d else y


@conv("GlobalAveragePool", "GlobalMaxPool")
def _global_pool(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    if x.ndim == 4:
        return _op(ctx, "global_avg_pool2d" if ctx.op_type == "GlobalAveragePool"
                   else "global_max_pool2d", x)
    axes = tuple(range(2, x.ndim))
    return x.mean(axes, keepdims=True) if ctx.op_type == "GlobalAveragePool" \
        else x.max(axes, keepdims=True)


@conv("BatchNormalization")
def _batchnorm(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    if attrs.get("training_mode", 0):
        raise ctx.error("BatchNormalization in training mode is not supported")
    eps = attrs.get("epsilon", 1e-5)
    shape = _channel_shape(x)
    parts = [ins[i] for i in range(1, 5)]
    if all(not isinstance(p, Tensor) for p in parts):  # fold into one scale and one shift
        s, b, m, v = (np.asarray(p, dtype=np.float64) for p in parts)
        scale = s / np.sqrt(v + eps)
        shift = b - m * scale
        dt = x.type.numpy_dtype
        return x * ctx.tensor(scale.astype(dt).reshape(shape)) + \
            ctx.tensor(shift.astype(dt).reshape(shape))
    s, b, m, v = (ctx.tensor(p).reshape(shape) for p in parts)
    return (x - m) * (v + _scalar(ctx, eps, x)).rsqrt() * s + b


@conv("InstanceNormalization")
def _instancenorm(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    eps = attrs.get("epsilon", 1e-5)
    shape = _channel_shape(x)
    axes = tuple(range(2, x.ndim))
    mean = x.mean(axes, keepdims=True)
    d = x - mean
    var = (d * d).mean(axes, keepdims=True)
    y = d * (var + _scalar(ctx, eps, x)).rsqrt()
    return y * ctx.tensor(ins[1]).reshape(shape) + ctx.tensor(ins[2]).reshape(shape)


@conv("LayerNormalization")
def _layernorm(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    axis = _axis(attrs.get("axis", -1), x.ndim, ctx)
    eps = attrs.get("epsilon", 1e-5)
    if attrs.get("stash_type", 1) != 1 or x.dtype != "f32":
        raise ctx.error("LayerNormalization is supported for f32 with stash_type=1")
    axes = tuple(range(axis, x.ndim))
    mean = x.mean(axes, keepdims=True)
    d = x - mean
    var = (d * d).mean(axes, keepdims=True)
    inv = (var + _scalar(ctx, eps, x)).rsqrt()
    y = d * inv * ctx.tensor(ins[1])
    if len(ins) > 2 and ins[2] is not None:
        y = y + ctx.tensor(ins[2])
    return [y, mean, inv]


@conv("LRN")
def _lrn(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    if x.ndim != 4:
        raise ctx.error("LRN is supported on NCHW (rank-4) inputs")
    size = int(attrs["size"])
    alpha, beta, bias = attrs.get("alpha", 1e-4), attrs.get("beta", 0.75), attrs.get("bias", 1.0)
    n, c, h, w = x.shape
    # the mean of squares over a window of `size` channels is an average pool over the
    # channel axis with zero padding counted
    sq = (x * x).reshape(n, 1, c, h * w)
    lo, hi = (size - 1) // 2, size - 1 - (size - 1) // 2
    mean = ctx.fb.op("avg_pool2d", sq, kernel=(size, 1), strides=(1, 1),
                     padding=(lo, 0, hi, 0), count_include_pad=True).reshape(n, c, h, w)
    base = mean * _scalar(ctx, alpha, x) + _scalar(ctx, bias, x)
    return x * base.__pow__(_scalar(ctx, -beta, x))


@conv("Softmax", "LogSoftmax")
def _softmax(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    name = "softmax" if ctx.op_type == "Softmax" else "log_softmax"
    if ctx.opset >= 13:
        return ctx.fb.op(name, x, axis=_axis(attrs.get("axis", -1), x.ndim, ctx))
    # before opset 13 the input is coerced to 2-D at `axis` and normalised over the tail
    axis = _axis(attrs.get("axis", 1), x.ndim, ctx)
    rows = math.prod(x.shape[:axis])
    flat = x.reshape(rows, math.prod(x.shape[axis:]))
    return ctx.fb.op(name, flat, axis=1).reshape(x.shape)


@conv("Hardmax")
def _hardmax(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    if ctx.opset < 13:
        raise ctx.error("Hardmax before opset 13 is not supported")
    axis = _axis(attrs.get("axis", -1), x.ndim, ctx)
    idx = x.argmax(axis, keepdims=True)
    iota = np.arange(x.shape[axis], dtype=np.int64).reshape(
        [x.shape[axis] if i == axis else 1 for i in range(x.ndim)])
    return ctx.fb.op("select", ctx.tensor(iota).eq(idx), _scalar(ctx, 1, x), _scalar(ctx, 0, x))
