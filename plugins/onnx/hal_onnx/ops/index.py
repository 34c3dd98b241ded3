"""Index ops whose indices are known at import time: GatherND, Compress, Scatter*, ..."""

from __future__ import annotations

import numpy as np

from hal_core.ir.builder import Tensor
from hal_onnx.ops.common import _axis, _gather_flat, _ints, conv


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
