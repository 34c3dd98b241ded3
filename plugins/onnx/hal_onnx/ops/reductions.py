"""The Reduce* and ArgMax/ArgMin ops."""

from __future__ import annotations

import math

from hal_onnx.ops.common import _axis, _ints, _scalar, conv


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
