"""A reference evaluator for the tensor IR: every op computed with numpy.

``evaluate(function, *inputs)`` runs a whole function; ``evaluate_op(op, operands)`` one op (the
compiler folds constants with it). Results always have exactly the op's result type. Floats
accumulate at least in float32 (float16 inputs are widened, then rounded once at the end);
integers wrap in their own type. Semantics, where numpy leaves a choice: integer ``div``
truncates toward zero and gives 0 for a zero divisor; ``round`` rounds half to even;
``maximum``/``minimum`` propagate NaN; reductions over an empty axis give the identity
(0, 1, -inf/+inf or the integer limits; NaN for mean); ``gather`` indices must lie in
[-n, n); pooling follows PyTorch (ceil mode, ``count_include_pad``); ``clip`` on integers
rounds its float bounds inward; ``cast`` from float to integer truncates toward zero (NaN and
out-of-range values are undefined), to ``i1`` means ``!= 0``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from hal_core.errors import HalRuntimeError, UsageError
from hal_core.ir.module import Function, Operation
from hal_core.ir.opdefs_table import reduce_axes

Impl = Callable[..., np.ndarray]
_IMPLS: dict[str, Impl] = {}


def _impl(*names: str) -> Callable[[Impl], Impl]:
    def deco(fn: Impl) -> Impl:
        for n in names:
            _IMPLS[n] = fn
        return fn
    return deco


def evaluate(function: Function, *inputs: Any) -> list[np.ndarray]:
    """Run ``function`` on numpy inputs; returns its results as numpy arrays."""
    if len(inputs) != len(function.args):
        raise UsageError(f"@{function.name} takes {len(function.args)} inputs"
                         f" ({', '.join(str(a.type) for a in function.args)}), given {len(inputs)}")
    env: dict[str, np.ndarray] = {}
    for arg, x in zip(function.args, inputs):
        a = np.asarray(x)
        if a.shape != arg.type.shape or a.dtype != np.dtype(arg.type.numpy_dtype):
            raise UsageError(f"@{function.name} argument %{arg.name}: expected {arg.type}"
                             f" (numpy {arg.type.numpy_dtype} {arg.type.shape}), given"
                             f" {a.dtype} {a.shape}")
        env[arg.name] = a
    for op in function.body:
        env[op.result.name] = evaluate_op(op, [env[v.name] for v in op.operands])
    return [env[v.name] for v in function.results]


def evaluate_op(op: Operation, operands: Sequence[np.ndarray]) -> np.ndarray:
    """Compute one op on numpy operands; the result has exactly ``op.type``."""
    with np.errstate(all="ignore"):  # inf/nan/wraparound are results, not errors
        out = _IMPLS[op.name](op, *[np.asarray(x) for x in operands])
    t = op.type
    out = np.asarray(out).astype(t.numpy_dtype, copy=False)
    if out.shape != t.shape:  # an evaluator bug, never the user's: say so plainly
        raise HalRuntimeError(f"reference evaluator: op '{op.name}' produced shape {out.shape},"
                              f" expected {t.shape}")
    # not np.ascontiguousarray: it turns rank-0 results into shape (1,)
    return out if out.flags.c_contiguous else out.copy(order="C")


def _wide(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32) if x.dtype == np.float16 else x


# -- elementwise --------------------------------------------------------------------------------

def _binary(f: Callable[..., np.ndarray]) -> Impl:
    return lambda op, a, b: f(a, b)


def _unary(f: Callable[..., np.ndarray]) -> Impl:
    return lambda op, a: f(a)


for _name, _fn in {"add": np.add, "sub": np.subtract, "mul": np.multiply, "pow": np.power,
                   "maximum": np.maximum, "minimum": np.minimum, "eq": np.equal,
                   "ne": np.not_equal, "lt": np.less, "le": np.less_equal, "gt": np.greater,
                   "ge": np.greater_equal, "logical_and": np.logical_and,
                   "logical_or": np.logical_or, "logical_xor": np.logical_xor}.items():
    _IMPLS[_name] = _binary(_fn)

for _name, _fn in {"exp": np.exp, "log": np.log, "sqrt": np.sqrt, "tanh": np.tanh,
                   "floor": np.floor, "ceil": np.ceil, "round": np.round, "neg": np.negative,
                   "abs": np.abs, "logical_not": np.logical_not}.items():
    _IMPLS[_name] = _unary(_fn)


@_impl("div")
def _div(op: Operation, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.dtype.kind == "f":
        return a / b
    safe = np.where(b == 0, 1, b).astype(b.dtype)
    q = a // safe
    r = a - q * safe
    q = q + ((r != 0) & ((a < 0) != (safe < 0))).astype(q.dtype)  # floor -> toward zero
    return np.where(b == 0, 0, q)


@_impl("rsqrt")
def _rsqrt(op: Operation, a: np.ndarray) -> np.ndarray:
    return 1 / np.sqrt(_wide(a))


@_impl("sigmoid")
def _sigmoid(op: Operation, a: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-_wide(a)))


_erf = np.frompyfunc(math.erf, 1, 1)


@_impl("erf")
def _erf_impl(op: Operation, a: np.ndarray) -> np.ndarray:
    # frompyfunc gives a bare Python float for a 0-d input; asarray keeps it an array.
    return np.asarray(_erf(a.astype(np.float64)), dtype=np.float64)


@_impl("relu")
def _relu(op: Operation, a: np.ndarray) -> np.ndarray:
    return np.maximum(a, np.zeros((), a.dtype))


@_impl("clip")
def _clip(op: Operation, a: np.ndarray) -> np.ndarray:
    lo, hi = op.attrs["min"], op.attrs["max"]
    if a.dtype.kind in "iu":
        info = np.iinfo(a.dtype)
        lo = info.min if lo == -math.inf else max(info.min, min(info.max, math.ceil(lo)))
        hi = info.max if hi == math.inf else min(info.max, max(info.min, math.floor(hi)))
    lo_a, hi_a = np.asarray(lo).astype(a.dtype), np.asarray(hi).astype(a.dtype)
    return np.minimum(np.maximum(a, lo_a), hi_a)


@_impl("cast")
def _cast(op: Operation, a: np.ndarray) -> np.ndarray:
    return a.astype(op.type.numpy_dtype)


@_impl("select")
def _select(op: Operation, c: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.where(c, a, b)


@_impl("constant")
def _constant(op: Operation) -> np.ndarray:
    return op.attrs["value"]


# -- reductions ---------------------------------------------------------------------------------

def _acc(a: np.ndarray) -> Any:
    return np.float64 if a.dtype.kind == "f" else a.dtype


@_impl("reduce_sum", "reduce_prod", "reduce_mean", "reduce_max", "reduce_min")
def _reduce(op: Operation, a: np.ndarray) -> np.ndarray:
    axes = reduce_axes(a.ndim, op.attrs["axes"])
    kd = op.attrs["keepdims"]
    kind = op.name[len("reduce_"):]
    if kind == "sum":
        return np.sum(a, axis=axes, keepdims=kd, dtype=_acc(a))
    if kind == "prod":
        return np.prod(a, axis=axes, keepdims=kd, dtype=_acc(a))
    if kind == "mean":  # sum / count: 0 / 0 gives NaN without numpy's empty-slice warning
        count = math.prod(a.shape[i] for i in axes)
        return np.sum(a, axis=axes, keepdims=kd, dtype=np.float64) / np.float64(count)
    floating = a.dtype.kind == "f"
    info = None if floating else np.iinfo(a.dtype)
    if kind == "max":
        return np.max(a, axis=axes, keepdims=kd, initial=-np.inf if floating else info.min)
    return np.min(a, axis=axes, keepdims=kd, initial=np.inf if floating else info.max)


@_impl("argmax", "argmin")
def _arg(op: Operation, a: np.ndarray) -> np.ndarray:
    f = np.argmax if op.name == "argmax" else np.argmin
    return f(a, axis=op.attrs["axis"], keepdims=op.attrs["keepdims"])


@_impl("softmax", "log_softmax")
def _softmax(op: Operation, a: np.ndarray) -> np.ndarray:
    x = a.astype(np.float64)
    axis = op.attrs["axis"]
    shifted = x - np.max(x, axis=axis, keepdims=True, initial=-np.inf)
    lse = np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
    return shifted - lse if op.name == "log_softmax" else np.exp(shifted - lse)


# -- matmul, conv, pooling ----------------------------------------------------------------------

@_impl("matmul")
def _matmul(op: Operation, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if op.attrs["transpose_a"]:
        a = np.swapaxes(a, -1, -2)
    if op.attrs["transpose_b"]:
        b = np.swapaxes(b, -1, -2)
    return np.matmul(_wide(a), _wide(b))


def _windows(x: np.ndarray, kernel: Sequence[int], strides: Sequence[int],
             dilations: Sequence[int], out_hw: Sequence[int], fill: Any) -> np.ndarray:
    """(N, C, OH, OW, KH, KW) view of the already padded NCHW ``x``."""
    span = [d * (k - 1) + 1 for k, d in zip(kernel, dilations)]
    need = [(o - 1) * s + sp for o, s, sp in zip(out_hw, strides, span)]
    extra = [max(0, n - d) for n, d in zip(need, x.shape[2:])]
    if any(extra):  # ceil mode windows may run past the padding; those cells never count
        x = np.pad(x, ((0, 0), (0, 0), (0, extra[0]), (0, extra[1])),
                   constant_values=fill)
    v = np.lib.stride_tricks.sliding_window_view(x, span, axis=(2, 3))
    v = v[:, :, ::strides[0], ::strides[1], ::dilations[0], ::dilations[1]]
    return v[:, :, :out_hw[0], :out_hw[1]]


def _fill_value(x: np.ndarray) -> Any:
    return -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min


def _pad_hw(x: np.ndarray, p: Sequence[int], value: Any) -> np.ndarray:
    return np.pad(x, ((0, 0), (0, 0), (p[0], p[2]), (p[1], p[3])), constant_values=value)


@_impl("conv2d")
def _conv2d(op: Operation, x: np.ndarray, w: np.ndarray, bias: np.ndarray | None = None
            ) -> np.ndarray:
    g = op.attrs["groups"]
    x, w = _wide(x), _wide(w)
    out_hw = op.type.shape[2:]
    xp = _pad_hw(x, op.attrs["padding"], 0)
    v = _windows(xp, w.shape[2:], op.attrs["strides"], op.attrs["dilations"], out_hw, 0)
    n, c = x.shape[:2]
    o = w.shape[0]
    v = v.reshape(n, g, c // g, *out_hw, *w.shape[2:])
    wg = w.reshape(g, o // g, *w.shape[1:])
    out = np.einsum("ngchwij,gocij->ngohw", v, wg, optimize=True)
    out = out.reshape(n, o, *out_hw)
    if bias is not None:
        out = out + _wide(bias).reshape(1, o, 1, 1)
    return out


@_impl("max_pool2d")
def _max_pool(op: Operation, x: np.ndarray) -> np.ndarray:
    xp = _pad_hw(x, op.attrs["padding"], _fill_value(x))
    v = _windows(xp, op.attrs["kernel"], op.attrs["strides"], (1, 1), op.type.shape[2:],
                 _fill_value(x))
    return v.max(axis=(-2, -1))


@_impl("avg_pool2d")
def _avg_pool(op: Operation, x: np.ndarray) -> np.ndarray:
    p, k, s = op.attrs["padding"], op.attrs["kernel"], op.attrs["strides"]
    xp = _pad_hw(_wide(x).astype(np.float64), p, 0.0)
    out_hw = op.type.shape[2:]
    sums = _windows(xp, k, s, (1, 1), out_hw, 0.0).sum(axis=(-2, -1))
    divisors = []
    for i in range(2):
        size = x.shape[2 + i]
        start = np.arange(out_hw[i]) * s[i] - p[i]
        end = np.minimum(start + k[i], size + p[i + 2])
        if not op.attrs["count_include_pad"]:
            end, start = np.minimum(end, size), np.maximum(start, 0)
        divisors.append(end - start)
    return sums / np.outer(divisors[0], divisors[1])


@_impl("global_max_pool2d")
def _gmax(op: Operation, x: np.ndarray) -> np.ndarray:
    return x.max(axis=(2, 3), keepdims=True)


@_impl("global_avg_pool2d")
def _gavg(op: Operation, x: np.ndarray) -> np.ndarray:
    return x.sum(axis=(2, 3), keepdims=True, dtype=np.float64) / (x.shape[2] * x.shape[3])


# -- shape and data movement --------------------------------------------------------------------

@_impl("transpose")
def _transpose(op: Operation, x: np.ndarray) -> np.ndarray:
    return np.transpose(x, op.attrs["perm"])


@_impl("reshape")
def _reshape(op: Operation, x: np.ndarray) -> np.ndarray:
    return x.reshape(op.attrs["shape"])


@_impl("expand")
def _expand(op: Operation, x: np.ndarray) -> np.ndarray:
    return np.broadcast_to(x, op.attrs["shape"])


@_impl("concat")
def _concat(op: Operation, *xs: np.ndarray) -> np.ndarray:
    return np.concatenate(xs, axis=op.attrs["axis"])


@_impl("slice")
def _slice(op: Operation, x: np.ndarray) -> np.ndarray:
    a = op.attrs
    return x[tuple(slice(b, e, s) for b, e, s in zip(a["starts"], a["ends"], a["steps"]))]


@_impl("pad")
def _pad(op: Operation, x: np.ndarray) -> np.ndarray:
    value = np.asarray(op.attrs["value"]).astype(x.dtype)
    return np.pad(x, list(zip(op.attrs["low"], op.attrs["high"])), constant_values=value)


@_impl("gather")
def _gather(op: Operation, x: np.ndarray, idx: np.ndarray) -> np.ndarray:
    axis = op.attrs["axis"]
    n = x.shape[axis]
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise HalRuntimeError(f"gather (result %{op.result.name}): indices must lie in"
                              f" [{-n}, {n}) for axis {axis} of size {n}; found values from"
                              f" {idx.min()} to {idx.max()}")
    return np.take(x, idx.astype(np.int64), axis=axis)


def _check_complete() -> None:
    from hal_core.ir.opdefs import OPS

    missing = set(OPS) - set(_IMPLS)
    if missing:
        raise ImportError(f"the reference evaluator lacks ops {sorted(missing)}")


_check_complete()
