"""ONNX op -> tensor IR converters, one function per op type (``CONVERTERS``).

A converter gets the import context, the node's inputs (a builder ``Tensor``, a numpy array
known at import time, or None for an omitted optional input) and its attributes, and returns
its outputs. Attributes that became inputs in later opsets (Reshape's shape, Slice's starts,
ReduceSum's axes, Clip's bounds, ...) are read from either place. Values that decide shapes
must be known at import time (``ctx.const``), since the IR's shapes are static.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from hal_core.ir.builder import Tensor

CONVERTERS: dict[str, Callable[..., Any]] = {}


def conv(*names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        for n in names:
            CONVERTERS[n] = fn
        return fn
    return deco


def _op(ctx: Any, name: str, *xs: Any, **attrs: Any) -> Tensor:
    return ctx.fb.op(name, *(ctx.tensor(x) for x in xs), **attrs)


def _scalar(ctx: Any, value: float, like: Tensor) -> Tensor:
    return ctx.fb.constant(np.asarray(value, dtype=like.type.numpy_dtype))


def _axis(axis: int, rank: int, ctx: Any) -> int:
    if not -rank <= axis < max(rank, 1):
        raise ctx.error(f"axis {axis} is out of range for rank {rank}")
    return axis % rank if rank else 0


def _ints(v: Any) -> list[int]:
    return [int(x) for x in np.asarray(v).reshape(-1)]


# -- elementwise -------------------------------------------------------------------------------
_BINARY = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Pow": "pow",
           "Equal": "eq", "Less": "lt", "LessOrEqual": "le", "Greater": "gt",
           "GreaterOrEqual": "ge", "And": "logical_and", "Or": "logical_or",
           "Xor": "logical_xor"}
_UNARY = {"Exp": "exp", "Log": "log", "Sqrt": "sqrt", "Tanh": "tanh", "Sigmoid": "sigmoid",
          "Erf": "erf", "Relu": "relu", "Floor": "floor", "Ceil": "ceil", "Round": "round",
          "Neg": "neg", "Abs": "abs", "Not": "logical_not"}


@conv(*_BINARY)
def _binary(ctx: Any, ins: list[Any], attrs: dict[str, Any]) -> Any:
    if "broadcast" in attrs or "axis" in attrs:
        raise ctx.error("the legacy 'broadcast'/'axis' attributes (opset < 7) are not"
                        " supported")
    a, b = ctx.tensor(ins[0]), ctx.tensor(ins[1])
    name = _BINARY[ctx.op_type]
    if name == "pow" and not a.dtype.startswith("f"):
        if a.dtype in ("i64", "u64"):
            raise ctx.error("Pow of 64-bit integers is not supported (computed in f64)")
        y = ctx.fb.op("pow", a.astype("f64"), b.astype("f64"))
        return y.round().astype(a.dtype)
    if name == "pow" and a.dtype != b.dtype:
        b = b.astype(a.dtype)
    if name == "div" and a.dtype in ("i8", "i16", "i32", "i64"):
        # ONNX integer Div truncates (as C), which is also the IR's rule
        pass
    return ctx.fb.op(name, a, b)


@conv(*_UNARY)
def _unary(ctx: Any, ins: list[Any], attrs: dict[str, Any]) -> Any:
    return _op(ctx, _UNARY[ctx.op_type], ins[0])


@conv("Identity", "Dropout")
def _identity(ctx: Any, ins: list[Any], attrs: dict[str, Any]) -> Any:
    if ctx.op_type == "Dropout":
        training = ins[2] if len(ins) > 2 else None
        if training is not None and bool(ctx.const(training, "training_mode").reshape(-1)[0]):
            raise ctx.error("Dropout in training mode (random) is not supported")
        if attrs.get("is_test", 1) == 0 and ctx.opset < 7:
            raise ctx.error("Dropout with is_test=0 is not supported")
        x = ctx.tensor(ins[0])
        mask = ctx.fb.constant(np.ones(x.shape, dtype=bool))
        return [x, mask]
    return ins[0]


@conv("Reciprocal")
def _reciprocal(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    return _scalar(ctx, 1.0, x) / x


@conv("LeakyRelu")
def _leaky(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    a = attrs.get("alpha", 0.01)
    return ctx.fb.op("select", x < _scalar(ctx, 0, x), x * _scalar(ctx, a, x), x)


@conv("PRelu")
def _prelu(ctx, ins, attrs):
    x, slope = ctx.tensor(ins[0]), ctx.tensor(ins[1])
    return ctx.fb.op("select", x < _scalar(ctx, 0, x), x * slope, x)


@conv("Elu", "Selu", "Celu")
def _elu(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    zero = _scalar(ctx, 0, x)
    if ctx.op_type == "Celu":
        a = attrs.get("alpha", 1.0)
        neg = (x / _scalar(ctx, a, x)).exp() - _scalar(ctx, 1, x)
        return ctx.fb.op("maximum", x, zero) + ctx.fb.op("minimum", zero, neg * _scalar(ctx, a, x))
    if ctx.op_type == "Elu":
        a, g = attrs.get("alpha", 1.0), 1.0
    else:
        a, g = attrs.get("alpha", 1.67326319217681884765625), attrs.get("gamma", 1.05070102214813232421875)
    neg = (x.exp() - _scalar(ctx, 1, x)) * _scalar(ctx, a, x)
    out = ctx.fb.op("select", x > zero, x, neg)
    return out * _scalar(ctx, g, x) if g != 1.0 else out


@conv("HardSigmoid", "HardSwish")
def _hardsigmoid(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    a, b = (attrs.get("alpha", 0.2), attrs.get("beta", 0.5)) if ctx.op_type == "HardSigmoid" \
        else (1 / 6, 0.5)
    y = (x * _scalar(ctx, a, x) + _scalar(ctx, b, x)).clip(0.0, 1.0)
    return y if ctx.op_type == "HardSigmoid" else x * y


@conv("Softplus")
def _softplus(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    # log(1 + exp(x)) without overflow: max(x, 0) + log(1 + exp(-|x|))
    return ctx.fb.op("maximum", x, _scalar(ctx, 0, x)) + \
        ((-x.abs()).exp() + _scalar(ctx, 1, x)).log()


@conv("Softsign")
def _softsign(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    return x / (x.abs() + _scalar(ctx, 1, x))


@conv("Mish")
def _mish(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    sp = ctx.fb.op("maximum", x, _scalar(ctx, 0, x)) + \
        ((-x.abs()).exp() + _scalar(ctx, 1, x)).log()
    return x * sp.tanh()


@conv("Gelu")
def _gelu(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    if attrs.get("approximate", "none") == "tanh":
        inner = (x + x * x * x * _scalar(ctx, 0.044715, x)) * _scalar(ctx, math.sqrt(2 / math.pi), x)
        return x * _scalar(ctx, 0.5, x) * (inner.tanh() + _scalar(ctx, 1, x))
    return x * _scalar(ctx, 0.5, x) * ((x * _scalar(ctx, 1 / math.sqrt(2), x)).erf()
                                       + _scalar(ctx, 1, x))


@conv("ThresholdedRelu")
def _thresholded(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    return ctx.fb.op("select", x > _scalar(ctx, attrs.get("alpha", 1.0), x), x,
                     _scalar(ctx, 0, x))


@conv("Sign")
def _sign(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    z = _scalar(ctx, 0, x)
    pos = ctx.fb.op("select", x > z, _scalar(ctx, 1, x), z)
    if x.dtype.startswith("u"):
        return pos
    return ctx.fb.op("select", x < z, _scalar(ctx, -1, x), pos)


@conv("Clip")
def _clip(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    lo, hi = attrs.get("min"), attrs.get("max")
    if len(ins) > 1 and ins[1] is not None:
        lo = ctx.const(ins[1], "Clip's min").reshape(-1)[0].item()
    if len(ins) > 2 and ins[2] is not None:
        hi = ctx.const(ins[2], "Clip's max").reshape(-1)[0].item()
    if x.dtype in ("i64", "u64") and any(v is not None and abs(v) > 2 ** 53 for v in (lo, hi)):
        raise ctx.error("Clip of 64-bit integers with a bound beyond 2**53 is not exact")
    if lo is not None and hi is not None and lo > hi:
        # ONNX: min > max gives max everywhere
        return ctx.fb.op("expand", _scalar(ctx, hi, x), shape=x.shape) if x.shape else \
            _scalar(ctx, hi, x)
    return x.clip(None if lo is None else float(lo), None if hi is None else float(hi))


@conv("Cast")
def _cast(ctx, ins, attrs):
    from hal_onnx.importer import ir_dtype

    return ctx.tensor(ins[0]).astype(ir_dtype(attrs["to"], ctx.node_desc))


@conv("CastLike")
def _castlike(ctx, ins, attrs):
    return ctx.tensor(ins[0]).astype(ctx.tensor(ins[1]).dtype)


@conv("Where")
def _where(ctx, ins, attrs):
    return _op(ctx, "select", ins[0], ins[1], ins[2])


@conv("Sum", "Max", "Min", "Mean")
def _variadic(ctx, ins, attrs):
    name = {"Sum": "add", "Max": "maximum", "Min": "minimum", "Mean": "add"}[ctx.op_type]
    acc = ctx.tensor(ins[0])
    for x in ins[1:]:
        acc = ctx.fb.op(name, acc, ctx.tensor(x))
    if ctx.op_type == "Mean":
        acc = acc / _scalar(ctx, len(ins), acc)
    return acc


@conv("IsNaN")
def _isnan(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    return x.ne(x)


@conv("IsInf")
def _isinf(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    inf = _scalar(ctx, np.inf, x)
    pos = x.eq(inf) if attrs.get("detect_positive", 1) else None
    neg = x.eq(-inf) if attrs.get("detect_negative", 1) else None
    if pos is not None and neg is not None:
        return pos | neg
    if pos is None and neg is None:
        return x.ne(x) & x.eq(x)
    return pos if pos is not None else neg


# -- matmul, conv, pooling, normalisation --------------------------------------------------------
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


def _auto_pads(ctx, attrs, spatial, kernel, strides, dilations) -> list[int]:
    """ONNX pads [x1_begin, x2_begin, x1_end, x2_end] after auto_pad."""
    mode = attrs.get("auto_pad", "NOTSET")
    n = len(spatial)
    if mode in ("NOTSET", ""):
        return list(attrs.get("pads", [0] * 2 * n))
    if mode == "VALID":
        return [0] * 2 * n
    if mode not in ("SAME_UPPER", "SAME_LOWER"):
        raise ctx.error(f"auto_pad {mode!r} is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER")
    begin, end = [], []
    for size, k, s, d in zip(spatial, kernel, strides, dilations):
        out = -(-size // s)
        total = max(0, (out - 1) * s + (k - 1) * d + 1 - size)
        small = total // 2
        big = total - small
        begin.append(big if mode == "SAME_LOWER" else small)
        end.append(small if mode == "SAME_LOWER" else big)
    return begin + end


def _to_2d(ctx, x: Tensor, what: str) -> tuple[Tensor, bool]:
    """NCW inputs become NCHW with H=1 (1-D convs and pools); other ranks are refused."""
    if x.ndim == 4:
        return x, False
    if x.ndim == 3:
        return x.reshape(x.shape[0], x.shape[1], 1, x.shape[2]), True
    raise ctx.error(f"{what} over {x.ndim - 2} spatial dimension(s) is not supported (1-D and"
                    " 2-D are)")


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


def _channel_shape(x: Tensor) -> tuple[int, ...]:
    return (x.shape[1],) + (1,) * (x.ndim - 2)


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


# -- reductions ---------------------------------------------------------------------------------
_REDUCE = {"ReduceSum": "sum", "ReduceMean": "mean", "ReduceMax": "max", "ReduceMin": "min",
           "ReduceProd": "prod", "ReduceL1": "l1", "ReduceL2": "l2", "ReduceSumSquare": "ss",
           "ReduceLogSum": "logsum", "ReduceLogSumExp": "logsumexp"}


@conv(*_REDUCE)
def _reduce(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    keep = bool(attrs.get("keepdims", 1))
    if len(ins) > 1 and ins[1] is not None:
        axes = _ints(ctx.const(ins[1], "the reduction axes"))
    else:
        axes = list(attrs["axes"]) if "axes" in attrs else None
    if not axes:
        if attrs.get("noop_with_empty_axes", 0):
            return x
        axes = list(range(x.ndim))
    axes = tuple(_axis(a, x.ndim, ctx) for a in axes)
    kind = _REDUCE[ctx.op_type]
    if x.dtype == "i1":
        raise ctx.error("reductions of bool tensors are not supported")
    if kind in ("max", "min") and 0 in x.shape:
        raise ctx.error("ReduceMax/ReduceMin over an empty tensor is not supported")
    if kind == "mean" and x.dtype not in ("f16", "f32", "f64"):
        s = x.sum(axes, keepdims=keep)
        return s / _scalar(ctx, math.prod(x.shape[a] for a in axes), s)
    if kind in ("sum", "mean", "max", "min", "prod"):
        return getattr(x, kind)(axes, keepdims=keep)
    if kind == "l1":
        return x.abs().sum(axes, keepdims=keep)
    if kind == "ss":
        return (x * x).sum(axes, keepdims=keep)
    if kind == "l2":
        s = (x * x).sum(axes, keepdims=keep)
        return s.sqrt() if s.dtype.startswith("f") else s.astype("f64").sqrt().astype(s.dtype)
    if kind == "logsum":
        return x.sum(axes, keepdims=keep).log()
    m = x.max(axes, keepdims=True)
    out = (x - m).exp().sum(axes, keepdims=True).log() + m
    return out if keep else out.reshape(tuple(d for i, d in enumerate(x.shape) if i not in axes))


@conv("ArgMax", "ArgMin")
def _argreduce(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    axis = _axis(attrs.get("axis", 0), x.ndim, ctx)
    keep = bool(attrs.get("keepdims", 1))
    if attrs.get("select_last_index", 0):  # the first index of the reversed axis
        rev = x[tuple(slice(None, None, -1) if a == axis else slice(None)
                      for a in range(x.ndim))]
        i = getattr(rev, ctx.op_type.lower())(axis, keepdims=keep)
        return _scalar(ctx, x.shape[axis] - 1, i) - i
    return getattr(x, ctx.op_type.lower())(axis, keepdims=keep)


# -- shapes -------------------------------------------------------------------------------------
@conv("Shape")
def _shape(ctx, ins, attrs):
    shape = np.asarray(_static_shape(ins[0]), dtype=np.int64)
    start, end = attrs.get("start", 0), attrs.get("end")
    return shape[start:end]


def _static_shape(v: Any) -> tuple[int, ...]:
    return tuple(v.shape)


@conv("Size")
def _size(ctx, ins, attrs):
    return np.asarray(math.prod(_static_shape(ins[0])), dtype=np.int64)


@conv("Reshape")
def _reshape(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    shape = list(attrs["shape"]) if "shape" in attrs else _ints(ctx.const(ins[1], "Reshape's shape"))
    if not attrs.get("allowzero", 0):
        shape = [x.shape[i] if d == 0 else d for i, d in enumerate(shape)]
    return x.reshape(shape)


@conv("Flatten")
def _flatten(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    axis = attrs.get("axis", 1)
    axis = axis + x.ndim if axis < 0 else axis
    return x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))


@conv("Squeeze")
def _squeeze(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    if len(ins) > 1 and ins[1] is not None:
        axes = _ints(ctx.const(ins[1], "Squeeze's axes"))
    else:
        axes = attrs.get("axes")
    if axes is None:
        axes = [i for i, d in enumerate(x.shape) if d == 1]
    axes = {_axis(a, x.ndim, ctx) for a in axes}
    if any(x.shape[a] != 1 for a in axes):
        raise ctx.error(f"Squeeze of axes {sorted(axes)} of shape {x.shape}: they must be 1")
    return x.reshape(tuple(d for i, d in enumerate(x.shape) if i not in axes))


@conv("Unsqueeze")
def _unsqueeze(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    axes = _ints(ctx.const(ins[1], "Unsqueeze's axes")) if len(ins) > 1 else list(attrs["axes"])
    rank = x.ndim + len(axes)
    axes = sorted(_axis(a, rank, ctx) for a in axes)
    shape = list(x.shape)
    for a in axes:
        shape.insert(a, 1)
    return x.reshape(shape)


@conv("Transpose")
def _transpose(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    perm = attrs.get("perm")
    return x.transpose(tuple(perm) if perm is not None else tuple(reversed(range(x.ndim))))


@conv("Concat")
def _concat(ctx, ins, attrs):
    xs = [ctx.tensor(v) for v in ins if v is not None]
    xs = [x for x in xs if x.size or len(xs) == 1] or xs[:1]
    axis = _axis(attrs["axis"], xs[0].ndim, ctx)
    if len(xs) == 1:
        return xs[0]
    return ctx.fb.op("concat", *xs, axis=axis)


@conv("Expand")
def _expand(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    shape = _ints(ctx.const(ins[1], "Expand's shape"))
    rank = max(len(shape), x.ndim)
    s1 = [1] * (rank - len(shape)) + shape
    s0 = [1] * (rank - x.ndim) + list(x.shape)
    out = [a if b == 1 else b for a, b in zip(s0, s1)]  # ONNX Expand broadcasts both ways
    if list(x.shape) == out:
        return x
    return x.broadcast_to(out)


@conv("Tile")
def _tile(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    reps = _ints(ctx.const(ins[1], "Tile's repeats"))
    for axis, r in enumerate(reps):
        if r != 1:
            x = ctx.fb.op("concat", *([x] * r), axis=axis) if r > 0 else x[tuple(
                slice(0, 0) if i == axis else slice(None) for i in range(x.ndim))]
    return x


@conv("Slice")
def _slice(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    if "starts" in attrs:  # opset < 10
        starts, ends = list(attrs["starts"]), list(attrs["ends"])
        axes = list(attrs.get("axes", range(len(starts))))
        steps = [1] * len(starts)
    else:
        starts = _ints(ctx.const(ins[1], "Slice's starts"))
        ends = _ints(ctx.const(ins[2], "Slice's ends"))
        axes = _ints(ctx.const(ins[3], "Slice's axes")) if len(ins) > 3 and ins[3] is not None \
            else list(range(len(starts)))
        steps = _ints(ctx.const(ins[4], "Slice's steps")) if len(ins) > 4 and \
            ins[4] is not None else [1] * len(starts)
    b, e, s = [0] * x.ndim, list(x.shape), [1] * x.ndim
    big = 2 ** 62
    for st, en, ax, sp in zip(starts, ends, axes, steps):
        ax = _axis(ax, x.ndim, ctx)
        d = x.shape[ax]
        st = max(-big, min(big, st))
        en = max(-big, min(big, en))
        # clamp as ONNX does, then express in Python slice terms
        if sp > 0:
            st = min(max(st + d if st < 0 else st, 0), d)
            en = min(max(en + d if en < 0 else en, 0), d)
        else:
            st = min(max(st + d if st < 0 else st, -1), d - 1)
            en = min(max(en + d if en < 0 else en, -1), d - 1)
            if en < 0:
                en = -d - 1
            if st < 0:
                st, en = 0, 0
        b[ax], e[ax], s[ax] = st, en, sp
    return ctx.fb.op("slice", x, starts=tuple(b), ends=tuple(e), steps=tuple(s))


@conv("Split")
def _split(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    axis = _axis(attrs.get("axis", 0), x.ndim, ctx)
    n_out = ctx.n_outputs
    if len(ins) > 1 and ins[1] is not None:
        sizes = _ints(ctx.const(ins[1], "Split's sizes"))
    elif "split" in attrs:
        sizes = list(attrs["split"])
    else:
        d = x.shape[axis]
        n = attrs.get("num_outputs", n_out)
        chunk = -(-d // n)
        sizes = [min(chunk, d - i * chunk) for i in range(n)]
    outs, start = [], 0
    for size in sizes:
        key = tuple(slice(start, start + size) if i == axis else slice(None)
                    for i in range(x.ndim))
        outs.append(x[key])
        start += size
    return outs


@conv("Pad")
def _pad(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    mode = attrs.get("mode", "constant")
    if mode not in ("constant", "edge", "reflect", "wrap"):
        raise ctx.error(f"Pad mode {mode!r} is not one of constant, edge, reflect, wrap")
    if "pads" in attrs:
        pads, value = list(attrs["pads"]), attrs.get("value", 0.0)
        axes = list(range(x.ndim))
    else:
        pads = _ints(ctx.const(ins[1], "Pad's pads"))
        value = ins[2] if len(ins) > 2 and ins[2] is not None else 0
        if not isinstance(value, Tensor):
            value = np.asarray(value).reshape(-1)[0].item()
        axes = _ints(ctx.const(ins[3], "Pad's axes")) if len(ins) > 3 and ins[3] is not None \
            else list(range(x.ndim))
    lo, hi = [0] * x.ndim, [0] * x.ndim
    k = len(axes)
    for j, ax in enumerate(axes):
        ax = _axis(ax, x.ndim, ctx)
        lo[ax], hi[ax] = pads[j], pads[j + k]
    if any(p < 0 for p in lo + hi):
        key = tuple(slice(-p if p < 0 else 0, d + q if q < 0 else d)
                    for p, q, d in zip(lo, hi, x.shape))
        x = x[key]
        lo, hi = [max(p, 0) for p in lo], [max(q, 0) for q in hi]
    if mode != "constant":  # every output element is some input element: one gather
        pos = np.arange(x.size).reshape(x.shape)
        flat = np.pad(pos, list(zip(lo, hi)), mode={"edge": "edge", "reflect": "reflect",
                                                    "wrap": "wrap"}[mode])
        return _gather_flat(ctx, x, flat)
    if isinstance(value, Tensor):  # known only at run time: pad, then choose by a mask
        inside = np.pad(np.ones(x.shape, dtype=bool), list(zip(lo, hi)))
        padded = ctx.fb.op("pad", x, low=tuple(lo), high=tuple(hi), value=0.0)
        return ctx.fb.op("select", ctx.tensor(inside), padded, value.reshape(()))
    return ctx.fb.op("pad", x, low=tuple(lo), high=tuple(hi), value=float(value))


@conv("Gather")
def _gather(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    axis = _axis(attrs.get("axis", 0), x.ndim, ctx)
    idx = ins[1]
    if isinstance(idx, Tensor):
        d = _scalar(ctx, x.shape[axis], idx)
        idx = ctx.fb.op("select", idx < _scalar(ctx, 0, idx), idx + d, idx)
    else:
        idx = np.asarray(idx)
        if np.any((idx < -x.shape[axis]) | (idx >= x.shape[axis])):
            raise ctx.error(f"Gather indices out of range for axis {axis} of {x.shape}")
        idx = np.where(idx < 0, idx + x.shape[axis], idx)
    return ctx.fb.op("gather", x, ctx.tensor(idx), axis=axis)


def _repeat(x: Tensor, scales: list[int]) -> Tensor:
    """Nearest upsampling by integer factors: every element repeated s times per axis."""
    for axis, s in enumerate(scales):
        if s == 1:
            continue
        shp = list(x.shape)
        y = x.reshape(shp[:axis + 1] + [1] + shp[axis + 1:])
        y = y.broadcast_to(shp[:axis + 1] + [s] + shp[axis + 1:])
        x = y.reshape(shp[:axis] + [shp[axis] * s] + shp[axis + 1:])
    return x


@conv("Upsample")
def _upsample(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    mode = attrs.get("mode", "nearest")
    scales = attrs.get("scales") if "scales" in attrs else \
        ctx.const(ins[1], "Upsample's scales").tolist()
    scales = [float(v) for v in scales]
    if mode != "nearest" or any(v < 1 or v != int(v) for v in scales):
        raise ctx.error(f"Upsample is supported in mode 'nearest' with integer scales >= 1,"
                        f" found mode {mode!r}, scales {scales}")
    return _repeat(x, [int(v) for v in scales])


@conv("Resize")
def _resize(ctx, ins, attrs):
    """Resize is separable and linear in the data: along each resized axis the output is
    M @ x for an (out x in) matrix that depends only on the static sizes and attributes.
    M is computed at import time by onnx's own reference interpolation applied to the
    identity, so every mode, coordinate transformation and rounding rule is ONNX's."""
    x = ctx.tensor(ins[0])
    mode = attrs.get("mode", "nearest")
    ctm = attrs.get("coordinate_transformation_mode", "half_pixel")
    nearest = attrs.get("nearest_mode", "round_prefer_floor")
    rank = x.ndim
    axes = [_axis(a, rank, ctx) for a in attrs["axes"]] if "axes" in attrs else list(range(rank))
    roi = ins[1] if len(ins) > 1 and ins[1] is not None else None
    roi = None if roi is None else ctx.const(roi, "Resize's roi").astype(np.float64)
    scales = sizes = None
    if len(ins) > 2 and ins[2] is not None and np.asarray(ctx.const(ins[2], "Resize's scales")).size:
        scales = [float(v) for v in ctx.const(ins[2], "Resize's scales")]
    elif len(ins) > 3 and ins[3] is not None:
        sizes = _ints(ctx.const(ins[3], "Resize's sizes"))
    if scales is None and sizes is None:
        raise ctx.error("Resize needs scales or sizes")
    full_scale = [1.0] * rank
    full_size = list(x.shape)
    full_roi = [0.0] * rank + [1.0] * rank
    for i, a in enumerate(axes):
        if scales is not None:
            full_scale[a] = scales[i]
        else:
            full_size[a] = sizes[i]
        if roi is not None and roi.size:
            full_roi[a], full_roi[rank + a] = roi[i], roi[len(axes) + i]
    if sizes is not None:
        full_scale = [full_size[a] / x.shape[a] if x.shape[a] else 1.0 for a in range(rank)]
        policy = attrs.get("keep_aspect_ratio_policy", "stretch")
        if policy != "stretch":
            pick = min if policy == "not_larger" else max
            s = pick(full_scale[a] for a in axes)
            full_scale = [s if a in axes else 1.0 for a in range(rank)]
            full_size = [int(s * x.shape[a] + 0.5) if a in axes else x.shape[a]
                         for a in range(rank)]
    else:
        full_size = [int(full_scale[a] * x.shape[a]) for a in range(rank)]
    if mode not in ("nearest", "linear", "cubic"):
        raise ctx.error(f"Resize mode {mode!r} is not one of nearest, linear, cubic")
    if mode != "nearest" and not x.dtype.startswith("f"):
        raise ctx.error(f"Resize mode {mode!r} of {x.dtype} tensors is not supported")
    integer = all(v >= 1 and v == int(v) for v in full_scale)
    if mode == "nearest" and integer and sizes is None and (
            (ctm in ("half_pixel", "pytorch_half_pixel") and nearest in (
                "round_prefer_floor", "round_prefer_ceil")) or
            (ctm == "asymmetric" and nearest == "floor")):
        return _repeat(x, [int(v) for v in full_scale])  # the same picks, no matrices
    for a in range(rank):
        n, out, scale = x.shape[a], full_size[a], full_scale[a]
        same_roi = math.isclose(full_roi[a], 0.0) and math.isclose(full_roi[rank + a], 1.0)
        if math.isclose(scale, 1.0) and out == n and (ctm != "tf_crop_and_resize" or same_roi):
            continue
        if n * out > 1 << 22:
            raise ctx.error(f"Resize of an axis from {n} to {out} by matrix is too large")
        mt, extra = _resize_matrix(ctx, attrs, mode, n, out, scale,
                                   [full_roi[a], full_roi[rank + a]])
        x = _apply_along(ctx, x, a, mt.astype(x.type.numpy_dtype))
        value = float(attrs.get("extrapolation_value", 0.0))
        if extra is not None and value != 0.0:
            shape = [out if i == a else 1 for i in range(rank)]
            x = x + ctx.tensor((extra * value).astype(x.type.numpy_dtype).reshape(shape))
    return x


def _resize_matrix(ctx, attrs, mode, n, out, scale, roi):
    """(in x out) interpolation matrix, and the mask of extrapolated outputs (or None)."""
    try:
        from onnx.reference.ops import op_resize as ref
    except ImportError:  # pragma: no cover - onnx without its reference ops
        raise ctx.error("Resize needs onnx.reference to build its interpolation") from None
    nearest = attrs.get("nearest_mode", "round_prefer_floor")
    a_coef = attrs.get("cubic_coeff_a", -0.75)
    if mode == "nearest":
        def fct(r, s):
            return ref._nearest_coeffs(r, mode=nearest)
    elif mode == "cubic":
        f = ref._cubic_coeffs_antialias if attrs.get("antialias", 0) else ref._cubic_coeffs

        def fct(r, s):
            return f(r, s, A=a_coef)
    else:
        fct = ref._linear_coeffs_antialias if attrs.get("antialias", 0) else ref._linear_coeffs
    kw = dict(roi=roi, coordinate_transformation_mode=attrs.get(
        "coordinate_transformation_mode", "half_pixel"),
        exclude_outside=bool(attrs.get("exclude_outside", 0)))
    try:
        mt = ref._interpolate_1d_along_axis(np.eye(n), 1, scale, out, fct,
                                            extrapolation_value=0.0, **kw)
        extra = ref._interpolate_1d_along_axis(np.zeros((1, n)), 1, scale, out, fct,
                                               extrapolation_value=1.0, **kw)
    except (AttributeError, TypeError, ValueError) as e:
        raise ctx.error(f"Resize: cannot build the interpolation ({e})") from None
    extra = extra.reshape(-1)
    return np.asarray(mt), (extra if np.any(extra) else None)


def _apply_along(ctx, x: Tensor, axis: int, mt: np.ndarray) -> Tensor:
    """``x`` with ``axis`` (length n) replaced by ``x_axis @ mt`` (mt: n x out)."""
    perm = [a for a in range(x.ndim) if a != axis] + [axis]
    inv = [int(i) for i in np.argsort(perm)]
    xt = x.transpose(perm) if axis != x.ndim - 1 else x
    rows = math.prod(xt.shape[:-1])
    y = (xt.reshape(rows, xt.shape[-1]) @ ctx.tensor(mt)).reshape(xt.shape[:-1] + (mt.shape[1],))
    return y.transpose(inv) if axis != x.ndim - 1 else y


@conv("DepthToSpace", "SpaceToDepth")
def _depth_space(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    b = int(attrs["blocksize"])
    n, c, h, w = x.shape
    if ctx.op_type == "SpaceToDepth":
        perm = (0, 3, 5, 1, 2, 4) if attrs.get("mode", "DCR") == "DCR" else (0, 1, 3, 5, 2, 4)
        y = x.reshape(n, c, h // b, b, w // b, b).transpose(perm)
        return y.reshape(n, c * b * b, h // b, w // b)
    if attrs.get("mode", "DCR") == "DCR":
        y = x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
    else:
        y = x.reshape(n, c // (b * b), b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
    return y.reshape(n, c // (b * b), h * b, w * b)


def supported_ops() -> list[str]:
    return sorted(CONVERTERS)


# -- more elementwise, index and normalisation ops ----------------------------------------------
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


@conv("GatherElements")
def _gather_elements(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    axis = _axis(attrs.get("axis", 0), x.ndim, ctx)
    idx = ctx.tensor(ins[1]).astype("i64")
    d = x.shape[axis]
    idx = ctx.fb.op("select", idx < _scalar(ctx, 0, idx), idx + _scalar(ctx, d, idx), idx)
    # flat index into x: the index's own position on every axis but `axis`, idx on it
    strides = np.cumprod((x.shape[1:] + (1,))[::-1])[::-1] if x.ndim else np.ones(0)
    strides = [int(s) for s in strides]
    base = np.zeros(idx.shape, dtype=np.int64)
    for a, n in enumerate(idx.shape):
        if a != axis:
            base = base + (np.arange(n).reshape([n if i == a else 1 for i in range(idx.ndim)])
                           * strides[a])
    flat = idx * _scalar(ctx, strides[axis], idx) + ctx.tensor(base)
    return ctx.fb.op("gather", x.reshape(x.size), flat, axis=0)


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


# -- losses --------------------------------------------------------------------------------------
def _nll(ctx, logp: Tensor, target: Any, weight: Any, attrs: dict[str, Any]) -> Tensor:
    """NegativeLogLikelihoodLoss on log-probabilities ``logp`` (N, C, d1...)."""
    t = ctx.tensor(target)
    t = t.astype("i64") if t.dtype != "i64" else t
    zero_i = _scalar(ctx, 0, t)
    ignore = attrs.get("ignore_index")
    skip = t.eq(_scalar(ctx, ignore, t)) if ignore is not None else None
    safe = ctx.fb.op("select", skip, zero_i, t) if skip is not None else t
    idx = safe.reshape((t.shape[0], 1) + t.shape[1:])
    picked = _gather_elements(ctx, [logp, idx], {"axis": 1}).reshape(t.shape)
    if weight is not None:
        w = ctx.fb.op("gather", ctx.tensor(weight), safe, axis=0)
    else:
        w = ctx.fb.op("expand", _scalar(ctx, 1, logp), shape=t.shape) if t.shape else \
            _scalar(ctx, 1, logp)
    if skip is not None:
        w = ctx.fb.op("select", skip, _scalar(ctx, 0, w), w)
    loss = -(picked * w)
    reduction = attrs.get("reduction", "mean")
    if reduction == "none":
        return loss
    total = loss.sum()
    if reduction == "sum":
        return total
    return total / w.sum()


@conv("NegativeLogLikelihoodLoss")
def _nll_loss(ctx, ins, attrs):
    return _nll(ctx, ctx.tensor(ins[0]), ins[1], ins[2] if len(ins) > 2 else None, attrs)


@conv("SoftmaxCrossEntropyLoss")
def _sce_loss(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    logp = x.log_softmax(axis=1)
    loss = _nll(ctx, logp, ins[1], ins[2] if len(ins) > 2 else None, attrs)
    return [loss, logp]


@conv("LpPool")
def _lppool(ctx, ins, attrs):
    x, one_d = _to_2d(ctx, ctx.tensor(ins[0]), "LpPool")
    p = float(attrs.get("p", 2))
    n = 1 if one_d else 2
    kernel = list(attrs["kernel_shape"])
    strides = list(attrs.get("strides", [1] * n))
    dil = list(attrs.get("dilations", [1] * n))
    if any(d != 1 for d in dil) or attrs.get("ceil_mode", 0):
        raise ctx.error("LpPool with dilations or ceil_mode is not supported")
    pads = _auto_pads(ctx, attrs, x.shape[-n:], kernel, strides, dil)
    if one_d:
        kernel, strides, pads = [1] + kernel, [1] + strides, [0, pads[0], 0, pads[1]]
    powered = x.abs().__pow__(_scalar(ctx, p, x))
    mean = ctx.fb.op("avg_pool2d", powered, kernel=tuple(kernel), strides=tuple(strides),
                     padding=tuple(pads), count_include_pad=True)
    y = (mean * _scalar(ctx, math.prod(kernel), x)).__pow__(_scalar(ctx, 1 / p, x))
    return y.reshape(y.shape[0], y.shape[1], y.shape[3]) if one_d else y


@conv("CumProd")
def _cumprod(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    axis = _axis(int(ctx.const(ins[1], "CumProd's axis").reshape(-1)[0]), x.ndim, ctx)
    n = x.shape[axis]
    if n > 256:
        raise ctx.error(f"CumProd over {n} > 256 elements is not supported (one op per step)")

    def part(i: int) -> Tensor:
        return x[tuple(slice(i, i + 1) if a == axis else slice(None) for a in range(x.ndim))]

    order = list(range(n))[::-1] if attrs.get("reverse", 0) else list(range(n))
    one = ctx.fb.op("expand", _scalar(ctx, 1, x), shape=part(0).shape)
    acc, outs = one, {}
    for i in order:
        if attrs.get("exclusive", 0):
            outs[i], acc = acc, acc * part(i)
        else:
            acc = acc * part(i)
            outs[i] = acc
    return ctx.fb.op("concat", *(outs[i] for i in range(n)), axis=axis) if n > 1 else outs[0]


def _pad_or_crop(ctx, x: Tensor, lo: list[int], hi: list[int]) -> Tensor:
    if any(p < 0 for p in lo + hi):
        x = x[tuple(slice(-p if p < 0 else 0, d + q if q < 0 else d)
                    for p, q, d in zip(lo, hi, x.shape))]
        lo, hi = [max(p, 0) for p in lo], [max(q, 0) for q in hi]
    if any(lo + hi):
        x = ctx.fb.op("pad", x, low=tuple(lo), high=tuple(hi), value=0.0)
    return x


@conv("ConvTranspose")
def _conv_transpose(ctx, ins, attrs):
    x, one_d = _to_2d(ctx, ctx.tensor(ins[0]), "ConvTranspose")
    w = ctx.tensor(ins[1])
    if one_d:
        w = w.reshape(w.shape[0], w.shape[1], 1, w.shape[2])
    if attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "") or "output_shape" in attrs:
        raise ctx.error("ConvTranspose with auto_pad or output_shape is not supported (give"
                        " pads and output_padding)")
    n = 1 if one_d else 2
    g = int(attrs.get("group", 1))
    strides = list(attrs.get("strides", [1] * n))
    dil = list(attrs.get("dilations", [1] * n))
    pads = list(attrs.get("pads", [0] * 2 * n))
    outpad = list(attrs.get("output_padding", [0] * n))
    if one_d:
        strides, dil, outpad = [1] + strides, [1] + dil, [0] + outpad
        pads = [0, pads[0], 0, pads[1]]
    nb, c, h, wd = x.shape
    sh, sw = strides
    if sh > 1 or sw > 1:  # put s-1 zeros between input elements
        y = x.reshape(nb, c, h, 1, wd, 1)
        y = ctx.fb.op("pad", y, low=(0,) * 6, high=(0, 0, 0, sh - 1, 0, sw - 1), value=0.0)
        y = y.reshape(nb, c, h * sh, wd * sw)
        x = y[:, :, :(h - 1) * sh + 1, :(wd - 1) * sw + 1]
    kh, kw = w.shape[2:]
    lo = [0, 0, dil[0] * (kh - 1) - pads[0], dil[1] * (kw - 1) - pads[1]]
    hi = [0, 0, dil[0] * (kh - 1) - pads[2] + outpad[0], dil[1] * (kw - 1) - pads[3] + outpad[1]]
    x = _pad_or_crop(ctx, x, lo, hi)
    cin, coutg = w.shape[:2]
    wt = w.reshape(g, cin // g, coutg, kh, kw).transpose(0, 2, 1, 3, 4)
    wt = wt.reshape(g * coutg, cin // g, kh, kw)[:, :, ::-1, ::-1]
    bias = [ctx.tensor(ins[2])] if len(ins) > 2 and ins[2] is not None else []
    y = ctx.fb.op("conv2d", x, wt, *bias, strides=(1, 1), padding=(0, 0, 0, 0),
                  dilations=tuple(dil), groups=g)
    return y.reshape(y.shape[0], y.shape[1], y.shape[3]) if one_d else y


@conv("Sinh", "Cosh", "Asinh", "Acosh", "Atanh")
def _hyperbolic(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    one, half = _scalar(ctx, 1, x), _scalar(ctx, 0.5, x)
    op = ctx.op_type
    if op == "Sinh":
        return (x.exp() - (-x).exp()) * half
    if op == "Cosh":
        return (x.exp() + (-x).exp()) * half
    if op == "Asinh":  # odd: computed on |x| so large negative inputs do not cancel
        ax = x.abs()
        y = (ax + (ax * ax + one).sqrt()).log()
        return ctx.fb.op("select", x < _scalar(ctx, 0, x), -y, y)
    if op == "Acosh":
        return (x + (x * x - one).sqrt()).log()
    return ((one + x) / (one - x)).log() * half


@conv("Shrink")
def _shrink(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    lambd, bias = attrs.get("lambd", 0.5), attrs.get("bias", 0.0)
    lo = ctx.fb.op("select", x < _scalar(ctx, -lambd, x), x + _scalar(ctx, bias, x),
                   _scalar(ctx, 0, x))
    return ctx.fb.op("select", x > _scalar(ctx, lambd, x), x - _scalar(ctx, bias, x), lo)


@conv("MeanVarianceNormalization")
def _mvn(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    axes = tuple(_axis(a, x.ndim, ctx) for a in attrs.get("axes", [0, 2, 3]))
    mean = x.mean(axes, keepdims=True)
    d = x - mean
    var = (d * d).mean(axes, keepdims=True)
    return d / (var.sqrt() + _scalar(ctx, 1e-9, x))


@conv("GroupNormalization")
def _groupnorm(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    g = int(attrs["num_groups"])
    eps = attrs.get("epsilon", 1e-5)
    if attrs.get("stash_type", 1) != 1 or x.dtype != "f32":
        raise ctx.error("GroupNormalization is supported for f32 with stash_type=1")
    n, c = x.shape[:2]
    xg = x.reshape((n, g, -1) if False else (n, g, x.size // (n * g)))
    mean = xg.mean(2, keepdims=True)
    d = xg - mean
    var = (d * d).mean(2, keepdims=True)
    y = (d * (var + _scalar(ctx, eps, x)).rsqrt()).reshape(x.shape)
    shape = _channel_shape(x)
    scale, bias = ctx.tensor(ins[1]), ctx.tensor(ins[2])
    if scale.shape == (g,) and g != c:  # opset 18: one scale per group
        scale = scale.reshape(g, 1).broadcast_to((g, c // g)).reshape(c)
        bias = bias.reshape(g, 1).broadcast_to((g, c // g)).reshape(c)
    return y * scale.reshape(shape) + bias.reshape(shape)


@conv("LpNormalization")
def _lpnorm(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    axis = _axis(attrs.get("axis", -1), x.ndim, ctx)
    p = attrs.get("p", 2)
    if p not in (1, 2):
        raise ctx.error(f"LpNormalization p={p}: p must be 1 or 2")
    norm = x.abs().sum(axis, keepdims=True) if p == 1 else \
        (x * x).sum(axis, keepdims=True).sqrt()
    zero = _scalar(ctx, 0, x)
    safe = ctx.fb.op("select", norm.eq(zero), _scalar(ctx, 1, x), norm)
    return ctx.fb.op("select", norm.eq(zero), zero, x / safe)


# -- attention -----------------------------------------------------------------------------------
def _heads_first(x: Tensor, heads: int) -> Tensor:
    """(B, S, H*D) -> (B, H, S, D)."""
    b, s, hd = x.shape
    return x.reshape(b, s, heads, hd // heads).transpose(0, 2, 1, 3)


@conv("Attention")
def _attention(ctx, ins, attrs):
    from hal_onnx.importer import ir_dtype

    q, k, v = (ctx.tensor(t) for t in ins[:3])
    opt = [ins[i] if len(ins) > i else None for i in range(3, 7)]
    mask, past_k, past_v, nonpad = opt
    rank3 = q.ndim == 3
    if rank3:
        if "q_num_heads" not in attrs or "kv_num_heads" not in attrs:
            raise ctx.error("3-D Attention needs q_num_heads and kv_num_heads")
        q = _heads_first(q, attrs["q_num_heads"])
        k = _heads_first(k, attrs["kv_num_heads"])
        v = _heads_first(v, attrs["kv_num_heads"])
    if (past_k is None) != (past_v is None) or (nonpad is not None and past_k is not None):
        raise ctx.error("past_key and past_value go together, and not with nonpad_kv_seqlen")
    dt = q.type.numpy_dtype
    if past_k is not None:
        k = ctx.fb.op("concat", ctx.tensor(past_k), k, axis=2)
        v = ctx.fb.op("concat", ctx.tensor(past_v), v, axis=2)
    present_k, present_v = k, v
    past_len = ctx.tensor(past_k).shape[2] if past_k is not None else 0
    batch, qh, qs = q.shape[:3]
    kvs = k.shape[2]
    nonpad = None if nonpad is None else ctx.const(nonpad, "nonpad_kv_seqlen").reshape(-1)
    # additive bias: the mask (0 / -inf for a bool mask), then causal, window and padding
    bias: Any = np.zeros((qs, kvs), dtype=np.float64)
    if mask is not None:
        if isinstance(mask, Tensor):
            m = mask if mask.dtype != "i1" else ctx.fb.op(
                "select", mask, _scalar(ctx, 0, q), _scalar(ctx, -np.inf, q))
            if m.shape[-1] < kvs:
                m = ctx.fb.op("pad", m, low=(0,) * m.ndim,
                              high=(0,) * (m.ndim - 1) + (kvs - m.shape[-1],), value=-np.inf)
            bias = m
        else:
            m = np.asarray(mask)
            m = np.where(m, 0.0, -np.inf) if m.dtype == bool else m.astype(np.float64)
            if m.shape[-1] < kvs:
                m = np.pad(m, [(0, 0)] * (m.ndim - 1) + [(0, kvs - m.shape[-1])],
                           constant_values=-np.inf)
            bias = bias + m
    i_idx, j_idx = np.arange(qs).reshape(qs, 1), np.arange(kvs).reshape(1, kvs)
    offset: Any = past_len
    if nonpad is not None and past_k is None:
        offset = (nonpad.astype(np.int64) - qs).reshape(-1, 1, 1, 1)
    extra = np.zeros((1, 1, qs, kvs))
    if attrs.get("is_causal", 0):
        extra = extra + np.where(j_idx <= i_idx + offset, 0.0, -np.inf)
    left, right = attrs.get("left_window_size", -1), attrs.get("right_window_size", -1)
    if left >= 0 or right >= 0:
        diff = (i_idx + offset) - j_idx
        ok = np.ones_like(diff, dtype=bool)
        if left >= 0:
            ok &= diff <= left
        if right >= 0:
            ok &= -diff <= right
        extra = extra + np.where(ok, 0.0, -np.inf)
    if nonpad is not None:
        pad = np.arange(kvs) < nonpad.reshape(-1, 1)
        extra = extra + np.where(pad, 0.0, -np.inf).reshape(batch, 1, 1, kvs)
    if isinstance(bias, Tensor):
        bias = bias + ctx.tensor(extra.astype(dt)) if np.any(extra) else bias
    else:
        bias = bias + extra
    # grouped-query attention: each K/V head serves q_heads / kv_heads query heads
    kh = k.shape[1]
    if qh != kh:
        if qh % kh:
            raise ctx.error(f"{qh} query heads are not a multiple of {kh} key/value heads")
        rep = qh // kh

        def repeat(t: Tensor) -> Tensor:
            b, h, s, d = t.shape
            return t.reshape(b, h, 1, s, d).broadcast_to((b, h, rep, s, d)).reshape(b, h * rep, s, d)
        k, v = repeat(k), repeat(v)
    scale = attrs.get("scale", 1 / math.sqrt(q.shape[3]))
    s = _scalar(ctx, math.sqrt(scale), q)
    qk = ctx.fb.op("matmul", q * s, k * s, transpose_b=True)
    softcap = attrs.get("softcap", 0.0)
    if softcap and softcap > 0:
        qk = (qk / _scalar(ctx, softcap, qk)).tanh() * _scalar(ctx, softcap, qk)
    # rows where every key is masked give zeros, not NaN
    if isinstance(bias, Tensor):
        neg_inf = _scalar(ctx, -np.inf, bias)
        masked = bias.max(axis=-1, keepdims=True).eq(neg_inf)
        safe_bias = ctx.fb.op("select", masked, _scalar(ctx, 0, bias), bias)
    else:
        masked_np = np.isneginf(np.max(bias, axis=-1, keepdims=True))
        masked = ctx.tensor(masked_np) if masked_np.any() else None
        safe_bias = ctx.tensor(np.where(masked_np, 0.0, bias).astype(dt))
    qkb = qk + safe_bias
    mode = attrs.get("qk_matmul_output_mode", 0)
    precision = attrs.get("softmax_precision")
    sm_in = qkb.astype(ir_dtype(precision, ctx.node_desc)) if precision else qkb
    sm = sm_in.softmax(axis=-1)
    if masked is not None:
        sm = ctx.fb.op("select", masked, _scalar(ctx, 0, sm), sm)
    sm = sm.astype(q.dtype) if sm.dtype != q.dtype else sm
    out = sm @ v
    if rank3:
        b_, h_, s_, d_ = out.shape
        out = out.transpose(0, 2, 1, 3).reshape(b_, s_, h_ * d_)
    if mode == 2:
        qk_out = qk + ctx.tensor(bias.astype(dt)) if not isinstance(bias, Tensor) else qk + bias
    elif mode == 3:
        qk_out = sm
    else:
        qk_out = qk
    return [out, present_k, present_v, qk_out]


# -- index ops with indices known at import time ---------------------------------------------
def _gather_flat(ctx, data: Tensor, flat: np.ndarray) -> Tensor:
    """``data.reshape(-1)[flat]`` with import-time indices."""
    return ctx.fb.op("gather", data.reshape(data.size), ctx.tensor(flat.astype(np.int64)), axis=0)


@conv("GatherND")
def _gather_nd(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    idx = ctx.const(ins[1], "GatherND's indices").astype(np.int64)
    b = attrs.get("batch_dims", 0)
    pos = np.arange(x.size).reshape(x.shape)
    k = idx.shape[-1]
    lead = pos.shape[:b]
    out = []
    for bi in np.ndindex(*lead) if b else [()]:
        sub, ix = pos[bi], idx[bi] if b else idx
        ix = np.where(ix < 0, ix + np.array(sub.shape[:k]), ix)
        out.append(sub[tuple(np.moveaxis(ix, -1, 0))])
    flat = np.stack(out).reshape(lead + out[0].shape) if b else out[0]
    return _gather_flat(ctx, x, flat)


@conv("Compress")
def _compress(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    cond = ctx.const(ins[1], "Compress's condition").astype(bool)
    pos = np.arange(x.size).reshape(x.shape)
    axis = attrs.get("axis")
    flat = np.compress(cond, pos, axis=None if axis is None else _axis(axis, x.ndim, ctx))
    return _gather_flat(ctx, x, flat)


@conv("ReverseSequence")
def _reverse_sequence(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    lens = ctx.const(ins[1], "ReverseSequence's sequence_lens").astype(np.int64)
    bax, tax = attrs.get("batch_axis", 1), attrs.get("time_axis", 0)
    pos = np.arange(x.size).reshape(x.shape)
    out = pos.copy()
    for b, n in enumerate(lens):
        src = [slice(None)] * x.ndim
        src[bax], src[tax] = b, slice(n - 1, None, -1) if n > 0 else slice(0, 0)
        dst = [slice(None)] * x.ndim
        dst[bax], dst[tax] = b, slice(0, n)
        out[tuple(dst)] = pos[tuple(src)]
    return _gather_flat(ctx, x, out)


def _scatter(ctx, data: Tensor, updates: Tensor, target: np.ndarray, reduction: str) -> Tensor:
    """Write ``updates`` (flattened) to the flat positions ``target`` of ``data``."""
    target = target.reshape(-1)
    if reduction == "none":  # the last write wins, as the reference's loop does
        src = np.full(data.size, -1, dtype=np.int64)
        src[target] = np.arange(target.size)
        written = src >= 0
        picked = ctx.fb.op("gather", updates.reshape(updates.size),
                           ctx.tensor(np.where(written, src, 0)), axis=0)
        out = ctx.fb.op("select", ctx.tensor(written), picked, data.reshape(data.size))
        return out.reshape(data.shape)
    if reduction == "add":  # every update added: a one-hot matrix sums the duplicates
        if data.size * target.size > 1 << 22:
            raise ctx.error("scatter-add this large is not supported")
        onehot = np.zeros((target.size, data.size), dtype=data.type.numpy_dtype)
        onehot[np.arange(target.size), target] = 1
        added = updates.reshape(1, updates.size) @ ctx.tensor(onehot)
        return data + added.reshape(data.shape)
    if reduction not in ("mul", "max", "min"):
        raise ctx.error(f"scatter reduction {reduction!r} is not one of none, add, mul, max, min")
    # duplicates apply one after another: round r applies each position's r-th update
    name = {"mul": "mul", "max": "maximum", "min": "minimum"}[reduction]
    flat_upd = updates.reshape(updates.size)
    out = data.reshape(data.size)
    seen = np.zeros(data.size, dtype=np.int64)
    rounds: list[np.ndarray] = []
    for i, t in enumerate(target):
        r = seen[t]
        seen[t] += 1
        if r == len(rounds):
            rounds.append(np.full(data.size, -1, dtype=np.int64))
        rounds[r][t] = i
    for src in rounds:
        hit = src >= 0
        picked = ctx.fb.op("gather", flat_upd, ctx.tensor(np.where(hit, src, 0)), axis=0)
        out = ctx.fb.op("select", ctx.tensor(hit), ctx.fb.op(name, out, picked), out)
    return out.reshape(data.shape)


@conv("ScatterElements", "Scatter")
def _scatter_elements(ctx, ins, attrs):
    x, upd = ctx.tensor(ins[0]), ctx.tensor(ins[2])
    idx = ctx.const(ins[1], "the scatter indices").astype(np.int64)
    axis = _axis(attrs.get("axis", 0), x.ndim, ctx)
    idx = np.where(idx < 0, idx + x.shape[axis], idx)
    grids = np.indices(idx.shape)
    coords = [idx if a == axis else grids[a] for a in range(x.ndim)]
    target = np.ravel_multi_index(tuple(coords), x.shape)
    return _scatter(ctx, x, upd, target, attrs.get("reduction", "none"))


@conv("ScatterND")
def _scatter_nd(ctx, ins, attrs):
    x, upd = ctx.tensor(ins[0]), ctx.tensor(ins[2])
    idx = ctx.const(ins[1], "ScatterND's indices").astype(np.int64)
    k = idx.shape[-1]
    pos = np.arange(x.size).reshape(x.shape)
    idx = np.where(idx < 0, idx + np.array(x.shape[:k]), idx)
    target = pos[tuple(np.moveaxis(idx, -1, 0))]
    return _scatter(ctx, x, upd, target, attrs.get("reduction", "none"))


@conv("CenterCropPad")
def _center_crop_pad(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    shape = _ints(ctx.const(ins[1], "CenterCropPad's shape"))
    axes = [_axis(a, x.ndim, ctx) for a in attrs.get("axes", range(x.ndim))]
    for a, want in zip(axes, shape):
        have = x.shape[a]
        if want < have:  # crop: the extra element goes to the end
            start = (have - want) // 2
            x = x[tuple(slice(start, start + want) if i == a else slice(None)
                        for i in range(x.ndim))]
        elif want > have:  # pad with zeros: the extra element goes to the end
            lo = (want - have) // 2
            low = tuple(lo if i == a else 0 for i in range(x.ndim))
            high = tuple(want - have - lo if i == a else 0 for i in range(x.ndim))
            x = ctx.fb.op("pad", x, low=low, high=high, value=0.0)
    return x


# -- quantization (8/16/32-bit integer types; no float8/int4, no blocked scales) --------------
def _per_axis(ctx, v: Any, x: Tensor, axis: int, what: str) -> Tensor:
    t = ctx.tensor(v)
    if t.ndim == 0 or t.size == 1:
        return t.reshape(())
    if t.ndim != 1:
        raise ctx.error(f"blocked {what} (rank {t.ndim}) is not supported")
    a = _axis(axis, x.ndim, ctx)
    return t.reshape([t.shape[0] if i == a else 1 for i in range(x.ndim)])


@conv("QuantizeLinear")
def _quantize(ctx, ins, attrs):
    from hal_onnx.importer import ir_dtype

    x = ctx.tensor(ins[0])
    if attrs.get("block_size", 0):
        raise ctx.error("blocked quantization is not supported")
    axis = attrs.get("axis", 1)
    zp = ins[2] if len(ins) > 2 and ins[2] is not None else None
    if zp is not None:
        out_dt = ctx.tensor(zp).dtype
    elif attrs.get("output_dtype"):
        out_dt = ir_dtype(attrs["output_dtype"], ctx.node_desc)
    else:
        out_dt = "u8"
    if out_dt.startswith("f") or out_dt == "i1":
        raise ctx.error(f"quantization to {out_dt} is not supported")
    scale = _per_axis(ctx, ins[1], x, axis, "scales").astype("f32")
    y = (x.astype("f32") / scale).round()
    if zp is not None:
        y = y + _per_axis(ctx, zp, x, axis, "zero points").astype("f32")
    info = np.iinfo(np.dtype({"i8": "int8", "u8": "uint8", "i16": "int16", "u16": "uint16",
                              "i32": "int32", "u32": "uint32"}.get(out_dt, "int64")))
    if out_dt in ("i64", "u64"):
        raise ctx.error("quantization to 64-bit integers is not supported")
    return y.clip(float(info.min), float(info.max)).astype(out_dt)


@conv("DequantizeLinear")
def _dequantize(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    if attrs.get("block_size", 0):
        raise ctx.error("blocked dequantization is not supported")
    if x.dtype in ("i64", "u64") or x.dtype.startswith("f"):
        raise ctx.error(f"dequantization of {x.dtype} is not supported")
    axis = attrs.get("axis", 1)
    scale = _per_axis(ctx, ins[1], x, axis, "scales")
    y = x.astype("f32")
    if len(ins) > 2 and ins[2] is not None:
        y = y - _per_axis(ctx, ins[2], x, axis, "zero points").astype("f32")
    y = y * scale.astype("f32")
    return y.astype(scale.dtype) if scale.dtype != "f32" else y


@conv("DynamicQuantizeLinear")
def _dynamic_quantize(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    zero = _scalar(ctx, 0, x)
    lo = ctx.fb.op("minimum", x.min(), zero)
    hi = ctx.fb.op("maximum", x.max(), zero)
    scale = (hi - lo) / _scalar(ctx, 255, x)
    zp = (-lo / scale).round().clip(0.0, 255.0)
    y = (x / scale).round() + zp
    return [y.clip(0.0, 255.0).astype("u8"), scale, zp.astype("u8")]


@conv("HannWindow", "HammingWindow", "BlackmanWindow", "MelWeightMatrix")
def _generator(ctx, ins, attrs):
    """Ops whose inputs are sizes and whose output is data made from them: once the inputs are
    known the import folds the node (onnx's reference computes it); until then say so."""
    for i, v in enumerate(ins):
        ctx.const(v, f"input {i} of {ctx.op_type}")
    raise ctx.error(f"{ctx.op_type} could not be folded")


@conv("TopK")
def _topk(ctx, ins, attrs):
    x = ctx.tensor(ins[0])
    k = int(ctx.const(ins[1], "TopK's k").reshape(-1)[0]) if len(ins) > 1 else int(attrs["k"])
    axis = _axis(attrs.get("axis", -1), x.ndim, ctx)
    n = x.shape[axis]
    if n > 2048:
        raise ctx.error(f"TopK over {n} > 2048 elements is not supported (it compares all pairs)")
    if x.dtype == "i1":
        raise ctx.error("TopK of bool tensors is not supported")
    largest = bool(attrs.get("largest", 1))
    perm = [a for a in range(x.ndim) if a != axis] + [axis]
    inv = [int(i) for i in np.argsort(perm)]
    xt = x.transpose(perm) if axis != x.ndim - 1 else x
    lead = xt.shape[:-1]
    a = xt.reshape(lead + (n, 1))
    b = xt.reshape(lead + (1, n))
    before = ctx.tensor(np.arange(n)[None, :] < np.arange(n)[:, None])  # j < i
    beats = (b > a) if largest else (b < a)
    # rank of element i: how many elements come before it (ties keep the lower index first)
    rank = ctx.fb.op("select", beats | (b.eq(a) & before), ctx.tensor(np.int64(1)),
                     ctx.tensor(np.int64(0))).sum(axis=-1)
    hit = rank.reshape(lead + (n, 1)).eq(ctx.tensor(np.arange(k, dtype=np.int64)))
    zero = _scalar(ctx, 0, x)
    values = ctx.fb.op("select", hit, a, zero).sum(axis=-2)
    iota = ctx.tensor(np.arange(n, dtype=np.int64).reshape(n, 1))
    indices = ctx.fb.op("select", hit, iota, ctx.tensor(np.int64(0))).sum(axis=-2)
    if axis != x.ndim - 1:
        values, indices = values.transpose(inv), indices.transpose(inv)
    return [values, indices]
