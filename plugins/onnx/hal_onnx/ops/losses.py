"""Loss ops, LpPool, ConvTranspose, CumProd, hyperbolic functions and more normalisations."""

from __future__ import annotations

import math
from typing import Any

from hal_core.ir.builder import Tensor
from hal_onnx.ops.common import (
    _auto_pads,
    _axis,
    _channel_shape,
    _gather_elements,
    _scalar,
    _to_2d,
    conv,
)


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
