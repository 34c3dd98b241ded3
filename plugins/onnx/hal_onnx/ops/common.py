"""What every converter module shares: the converter table, its decorator and helpers."""

from __future__ import annotations

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


def _channel_shape(x: Tensor) -> tuple[int, ...]:
    return (x.shape[1],) + (1,) * (x.ndim - 2)


def _static_shape(v: Any) -> tuple[int, ...]:
    return tuple(v.shape)


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


def _gather_flat(ctx, data: Tensor, flat: np.ndarray) -> Tensor:
    """``data.reshape(-1)[flat]`` with import-time indices."""
    return ctx.fb.op("gather", data.reshape(data.size), ctx.tensor(flat.astype(np.int64)), axis=0)
