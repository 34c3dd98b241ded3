"""The ops of the tensor IR and their type rules (registered into ``opdefs.OPS``).

Read :mod:`hal_core.ir.opdefs` first for the conventions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hal_core.ir.opdefs import (
    AttrSpec,
    OpError,
    _dtypes,
    _ints_len,
    _rank,
    _register,
    _same_dtype,
    broadcast_shapes,
    normalize_axis,
)
from hal_core.ir.types import FLOAT_TYPES, INTEGER_TYPES, NUMERIC_TYPES, TensorType

ALL_TYPES = NUMERIC_TYPES | {"i1"}
BOOL = frozenset({"i1"})
Types = tuple[TensorType, ...]
Attrs = Mapping[str, Any]

# -- elementwise --------------------------------------------------------------------------------


def _binary(allowed: frozenset[str], what: str, result: str | None = None):
    def infer(ts: Types, attrs: Attrs) -> TensorType:
        _dtypes(ts[0], 0, allowed, what)
        _same_dtype(ts)
        return TensorType(broadcast_shapes(ts[0].shape, ts[1].shape), result or ts[0].dtype)
    return infer


def _unary(allowed: frozenset[str], what: str):
    def infer(ts: Types, attrs: Attrs) -> TensorType:
        _dtypes(ts[0], 0, allowed, what)
        return ts[0]
    return infer


for _n in ("add", "sub", "mul", "div", "maximum", "minimum"):
    _register(_n, ("lhs", "rhs"), _binary(NUMERIC_TYPES, "a numeric (not i1)"), "elementwise")
_register("pow", ("lhs", "rhs"), _binary(FLOAT_TYPES, "a float"), "elementwise")
for _n in ("eq", "ne"):
    _register(_n, ("lhs", "rhs"), _binary(ALL_TYPES, "any", "i1"), "elementwise")
for _n in ("lt", "le", "gt", "ge"):
    _register(_n, ("lhs", "rhs"), _binary(NUMERIC_TYPES, "a numeric (not i1)", "i1"),
              "elementwise")
for _n in ("logical_and", "logical_or", "logical_xor"):
    _register(_n, ("lhs", "rhs"), _binary(BOOL, "an i1"), "elementwise")
_register("logical_not", ("operand",), _unary(BOOL, "an i1"), "elementwise")
for _n in ("exp", "log", "sqrt", "rsqrt", "tanh", "sigmoid", "erf", "floor", "ceil", "round"):
    _register(_n, ("operand",), _unary(FLOAT_TYPES, "a float"), "elementwise")
for _n in ("neg", "abs", "relu"):
    _register(_n, ("operand",), _unary(NUMERIC_TYPES, "a numeric (not i1)"), "elementwise")
_register("clip", ("operand",), _unary(NUMERIC_TYPES, "a numeric (not i1)"), "elementwise",
          [AttrSpec("min", "float", float("-inf")), AttrSpec("max", "float", float("inf"))])
_register("cast", ("operand",), lambda ts, a: ts[0].with_dtype(a["to"]), "elementwise",
          [AttrSpec("to", "dtype")])


def _select(ts: Types, attrs: Attrs) -> TensorType:
    _dtypes(ts[0], 0, BOOL, "an i1 (the condition)")
    _same_dtype(ts, first=1)
    return TensorType(broadcast_shapes(ts[0].shape, ts[1].shape, ts[2].shape), ts[1].dtype)


_register("select", ("condition", "on_true", "on_false"), _select, "elementwise")

# -- reductions ---------------------------------------------------------------------------------


def reduce_axes(rank: int, axes: tuple[int, ...]) -> tuple[int, ...]:
    """Sorted non-negative axes; raises OpError for out-of-range or repeated axes."""
    out = sorted(normalize_axis(a, rank, "axes") for a in axes)
    if len(set(out)) != len(out):
        raise OpError(f"attribute 'axes' repeats an axis: {list(axes)}", attr="axes")
    return tuple(out)


def _reduce(allowed: frozenset[str], what: str):
    def infer(ts: Types, attrs: Attrs) -> TensorType:
        t = ts[0]
        _dtypes(t, 0, allowed, what)
        axes = reduce_axes(t.rank, attrs["axes"])
        if attrs["keepdims"]:
            shape = tuple(1 if i in axes else d for i, d in enumerate(t.shape))
        else:
            shape = tuple(d for i, d in enumerate(t.shape) if i not in axes)
        return t.with_shape(shape)
    return infer


_REDUCE_ATTRS = [AttrSpec("axes", "ints"), AttrSpec("keepdims", "bool", False)]
for _n in ("reduce_sum", "reduce_prod", "reduce_max", "reduce_min"):
    _register(_n, ("operand",), _reduce(NUMERIC_TYPES, "a numeric (not i1)"), "reduction",
              _REDUCE_ATTRS)
_register("reduce_mean", ("operand",), _reduce(FLOAT_TYPES, "a float"), "reduction",
          _REDUCE_ATTRS)


def _arg_reduce(ts: Types, attrs: Attrs) -> TensorType:
    t = ts[0]
    _dtypes(t, 0, NUMERIC_TYPES, "a numeric (not i1)")
    if t.rank == 0:
        raise OpError(f"expected a tensor of rank >= 1, found {t}", operand=0)
    axis = normalize_axis(attrs["axis"], t.rank)
    if t.shape[axis] == 0:
        raise OpError(f"cannot take an arg-reduction over the empty axis {axis} of {t}",
                      operand=0)
    shape = list(t.shape)
    if attrs["keepdims"]:
        shape[axis] = 1
    else:
        del shape[axis]
    return TensorType(tuple(shape), "i64")


for _n in ("argmax", "argmin"):
    _register(_n, ("operand",), _arg_reduce, "reduction",
              [AttrSpec("axis", "int"), AttrSpec("keepdims", "bool", False)])


def _softmax(ts: Types, attrs: Attrs) -> TensorType:
    _dtypes(ts[0], 0, FLOAT_TYPES, "a float")
    normalize_axis(attrs["axis"], ts[0].rank)
    return ts[0]


for _n in ("softmax", "log_softmax"):
    _register(_n, ("operand",), _softmax, "reduction", [AttrSpec("axis", "int", -1)])

# -- matmul, conv, pooling ----------------------------------------------------------------------


def _matmul(ts: Types, attrs: Attrs) -> TensorType:
    a, b = ts
    _dtypes(a, 0, NUMERIC_TYPES, "a numeric (not i1)")
    _same_dtype(ts)
    for i, t in enumerate(ts):
        if t.rank < 2:
            raise OpError(f"expected a tensor of rank >= 2, found {t}; reshape vectors"
                          " to 1xN or Nx1", operand=i)
    m, ka = (a.shape[-1], a.shape[-2]) if attrs["transpose_a"] else a.shape[-2:]
    kb, n = (b.shape[-1], b.shape[-2]) if attrs["transpose_b"] else b.shape[-2:]
    if ka != kb:
        raise OpError(f"contraction dimension mismatch: lhs {a} gives K={ka}"
                      f" (transpose_a={attrs['transpose_a']}), rhs {b} gives K={kb}"
                      f" (transpose_b={attrs['transpose_b']})", operand=1)
    batch = broadcast_shapes(a.shape[:-2], b.shape[:-2])
    return TensorType(batch + (m, n), a.dtype)


_register("matmul", ("lhs", "rhs"), _matmul, "matmul",
          [AttrSpec("transpose_a", "bool", False), AttrSpec("transpose_b", "bool", False)])


def window_output_size(size: int, kernel: int, stride: int, pad_lo: int, pad_hi: int,
                       dilation: int = 1, ceil_mode: bool = False) -> int:
    """Output length of a sliding window (PyTorch's rule for ceil_mode)."""
    span = size + pad_lo + pad_hi - dilation * (kernel - 1) - 1
    if span < 0:
        return 0
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + pad_lo:
        out -= 1  # the last window must start inside the input or the low padding
    return out


def _window_attrs(attrs: Attrs, pads_below_kernel: tuple[int, int] | None) -> None:
    _ints_len(attrs, "strides", 2, 1)
    _ints_len(attrs, "padding", 4, 0)
    if "dilations" in attrs:
        _ints_len(attrs, "dilations", 2, 1)
    if pads_below_kernel is not None:
        p = attrs["padding"]
        for k, lo, hi in ((pads_below_kernel[0], p[0], p[2]), (pads_below_kernel[1], p[1], p[3])):
            if lo >= k or hi >= k:
                raise OpError(f"attribute 'padding' {list(p)} must be smaller than the kernel"
                              f" {list(pads_below_kernel)} in each dimension", attr="padding")


def _spatial_out(x: TensorType, kernel: tuple[int, int], attrs: Attrs, dil: tuple[int, int],
                 ceil_mode: bool) -> tuple[int, int]:
    p, s = attrs["padding"], attrs["strides"]
    out = tuple(window_output_size(x.shape[2 + i], kernel[i], s[i], p[i], p[i + 2], dil[i],
                                   ceil_mode) for i in range(2))
    if 0 in out:
        raise OpError(f"the window (kernel {list(kernel)}, dilations {list(dil)}) is larger"
                      f" than the padded input {x}, padding {list(p)}", operand=0)
    return out  # type: ignore[return-value]


def _conv2d(ts: Types, attrs: Attrs) -> TensorType:
    x, w = ts[0], ts[1]
    _dtypes(x, 0, NUMERIC_TYPES, "a numeric (not i1)")
    _same_dtype(ts)
    _rank(x, 0, 4, "NCHW input")
    _rank(w, 1, 4, "OIHW weight")
    _window_attrs(attrs, None)
    if 0 in w.shape[2:]:
        raise OpError(f"expected a kernel of at least 1x1, found weight {w}", operand=1)
    g = attrs["groups"]
    if g < 1 or x.shape[1] % g or w.shape[0] % g:
        raise OpError(f"attribute 'groups' = {g} must be >= 1 and divide the input channels"
                      f" ({x.shape[1]}) and output channels ({w.shape[0]})", attr="groups")
    if w.shape[1] * g != x.shape[1]:
        raise OpError(f"weight {w} expects {w.shape[1]} input channels per group (x {g} groups"
                      f" = {w.shape[1] * g}), but the input {x} has {x.shape[1]}", operand=1)
    if len(ts) == 3 and ts[2].shape != (w.shape[0],):
        raise OpError(f"expected bias of shape ({w.shape[0]},) (one per output channel),"
                      f" found {ts[2]}", operand=2)
    oh, ow = _spatial_out(x, w.shape[2:], attrs, attrs["dilations"], False)
    return TensorType((x.shape[0], w.shape[0], oh, ow), x.dtype)


_register("conv2d", ("input", "weight", "bias"), _conv2d, "conv",
          [AttrSpec("strides", "ints", (1, 1)), AttrSpec("padding", "ints", (0, 0, 0, 0)),
           AttrSpec("dilations", "ints", (1, 1)), AttrSpec("groups", "int", 1)], optional=1)


def _pool(ts: Types, attrs: Attrs) -> TensorType:
    x = ts[0]
    _dtypes(x, 0, NUMERIC_TYPES, "a numeric (not i1)")
    _rank(x, 0, 4, "NCHW input")
    _ints_len(attrs, "kernel", 2, 1)
    _window_attrs(attrs, attrs["kernel"])
    oh, ow = _spatial_out(x, attrs["kernel"], attrs, (1, 1), attrs["ceil_mode"])
    return x.with_shape(x.shape[:2] + (oh, ow))


def _avg_pool(ts: Types, attrs: Attrs) -> TensorType:
    _dtypes(ts[0], 0, FLOAT_TYPES, "a float")
    return _pool(ts, attrs)


_POOL_ATTRS = [AttrSpec("kernel", "ints"), AttrSpec("strides", "ints", (1, 1)),
               AttrSpec("padding", "ints", (0, 0, 0, 0)), AttrSpec("ceil_mode", "bool", False)]
_register("max_pool2d", ("input",), _pool, "pool", _POOL_ATTRS)
_register("avg_pool2d", ("input",), _avg_pool, "pool",
          _POOL_ATTRS + [AttrSpec("count_include_pad", "bool", False)])


def _global_pool(allowed: frozenset[str], what: str):
    def infer(ts: Types, attrs: Attrs) -> TensorType:
        x = ts[0]
        _dtypes(x, 0, allowed, what)
        _rank(x, 0, 4, "NCHW input")
        if x.shape[2] * x.shape[3] == 0:
            raise OpError(f"global pooling needs a non-empty spatial extent, found {x}",
                          operand=0)
        return x.with_shape(x.shape[:2] + (1, 1))
    return infer


_register("global_max_pool2d", ("input",), _global_pool(NUMERIC_TYPES, "a numeric (not i1)"),
          "pool")
_register("global_avg_pool2d", ("input",), _global_pool(FLOAT_TYPES, "a float"), "pool")

# -- shape and data movement --------------------------------------------------------------------


def _transpose(ts: Types, attrs: Attrs) -> TensorType:
    t, perm = ts[0], attrs["perm"]
    if sorted(perm) != list(range(t.rank)):
        raise OpError(f"attribute 'perm' must be a permutation of 0..{t.rank - 1} for {t},"
                      f" found {list(perm)}", attr="perm")
    return t.with_shape(tuple(t.shape[p] for p in perm))


def _reshape(ts: Types, attrs: Attrs) -> TensorType:
    t, shape = ts[0], attrs["shape"]
    new = TensorType(shape, t.dtype) if all(d >= 0 for d in shape) else None
    if new is None or new.size != t.size:
        raise OpError(f"attribute 'shape' {list(shape)} must be non-negative with"
                      f" {t.size} elements in all (the size of {t})", attr="shape")
    return new


def _expand(ts: Types, attrs: Attrs) -> TensorType:
    t, shape = ts[0], tuple(attrs["shape"])
    ok = len(shape) >= t.rank and all(d >= 0 for d in shape) and all(
        d in (1, s) for d, s in zip(t.shape, shape[len(shape) - t.rank:]))
    if not ok:
        raise OpError(f"cannot broadcast {t} to shape {list(shape)}: each dimension must be"
                      " 1 or equal to the target's trailing dimension", operand=0)
    return t.with_shape(shape)


def _concat(ts: Types, attrs: Attrs) -> TensorType:
    first = ts[0]
    if first.rank == 0:
        raise OpError(f"cannot concatenate rank-0 tensors, found {first}", operand=0)
    axis = normalize_axis(attrs["axis"], first.rank)
    _same_dtype(ts)
    total = 0
    for i, t in enumerate(ts):
        same = t.rank == first.rank and all(
            a == b for k, (a, b) in enumerate(zip(t.shape, first.shape)) if k != axis)
        if not same:
            raise OpError(f"expected shape {first.shape} except along axis {axis},"
                          f" found {t.shape}", operand=i)
        total += t.shape[axis]
    return first.with_shape(first.shape[:axis] + (total,) + first.shape[axis + 1:])


def slice_params(shape: tuple[int, ...], starts: tuple[int, ...], ends: tuple[int, ...],
                 steps: tuple[int, ...]) -> list[tuple[int, int, int]]:
    """Per dimension (first index, step, length) under Python slice semantics."""
    out = []
    for d, b, e, s in zip(shape, starts, ends, steps):
        first, _, step = slice(b, e, s).indices(d)
        out.append((first, step, len(range(*slice(b, e, s).indices(d)))))
    return out


def _slice(ts: Types, attrs: Attrs) -> TensorType:
    t = ts[0]
    for name in ("starts", "ends", "steps"):
        _ints_len(attrs, name, t.rank)
    if 0 in attrs["steps"]:
        raise OpError(f"attribute 'steps' must not contain 0, found {list(attrs['steps'])}",
                      attr="steps")
    params = slice_params(t.shape, attrs["starts"], attrs["ends"], attrs["steps"])
    return t.with_shape(tuple(n for _, _, n in params))


def _pad(ts: Types, attrs: Attrs) -> TensorType:
    t = ts[0]
    _ints_len(attrs, "low", t.rank, 0)
    _ints_len(attrs, "high", t.rank, 0)
    return t.with_shape(tuple(d + lo + hi for d, lo, hi in
                              zip(t.shape, attrs["low"], attrs["high"])))


def _gather(ts: Types, attrs: Attrs) -> TensorType:
    data, idx = ts
    _dtypes(idx, 1, INTEGER_TYPES, "an integer (indices)")
    if data.rank == 0:
        raise OpError(f"expected a tensor of rank >= 1, found {data}", operand=0)
    axis = normalize_axis(attrs["axis"], data.rank)
    if data.shape[axis] == 0 and idx.size:
        raise OpError(f"cannot gather from the empty axis {axis} of {data}", operand=0)
    return data.with_shape(data.shape[:axis] + idx.shape + data.shape[axis + 1:])


def _constant(ts: Types, attrs: Attrs) -> TensorType:
    v = attrs["value"]
    return TensorType(tuple(v.shape), v.dtype.name)


_register("transpose", ("operand",), _transpose, "shape", [AttrSpec("perm", "ints")])
_register("reshape", ("operand",), _reshape, "shape", [AttrSpec("shape", "ints")])
_register("expand", ("operand",), _expand, "shape", [AttrSpec("shape", "ints")])
_register("concat", ("inputs",), _concat, "shape", [AttrSpec("axis", "int")], variadic=True)
_register("slice", ("operand",), _slice, "shape",
          [AttrSpec("starts", "ints"), AttrSpec("ends", "ints"), AttrSpec("steps", "ints")])
_register("pad", ("operand",), _pad, "shape",
          [AttrSpec("low", "ints"), AttrSpec("high", "ints"), AttrSpec("value", "float", 0.0)])
_register("gather", ("data", "indices"), _gather, "shape", [AttrSpec("axis", "int", 0)])
_register("constant", (), _constant, "constant", [AttrSpec("value", "dense")])
