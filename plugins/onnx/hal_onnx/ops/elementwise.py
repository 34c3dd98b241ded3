"""Elementwise ONNX ops: arithmetic, comparisons, activations, Cast, Where, Clip."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hal_onnx.ops.common import _op, _scalar, conv


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
