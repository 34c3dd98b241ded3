"""Shape and data-movement ops: Reshape, Slice, Pad, Concat, Gather, Resize, ..."""

from __future__ import annotations

import math

import numpy as np

from hal_core.ir.builder import Tensor
from hal_onnx.ops.common import _axis, _gather_flat, _ints, _scalar, _static_shape, conv


@conv("Shape")
def _shape(ctx, ins, attrs):
    shape = np.asarray(_static_shape(ins[0]), dtype=np.int64)
    start, end = attrs.get("start", 0), attrs.get("end")
    return shape[start:end]


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
