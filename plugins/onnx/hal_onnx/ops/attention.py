"""The Attention op (opsets 23+)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hal_core.ir.builder import Tensor
from hal_onnx.ops.common import _scalar, conv


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
