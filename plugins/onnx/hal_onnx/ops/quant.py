"""Quantization ops, TopK and generator ops folded once their sizes are known."""

from __future__ import annotations

from typing import Any

import numpy as np

from hal_core.ir.builder import Tensor
from hal_onnx.ops.common import _axis, _scalar, conv


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
