"""Free functions for building every op, numpy style: ``ops.conv2d(x, w, b, strides=2)``.

Each takes builder Tensors (see :mod:`hal_core.ir.builder`); Python scalars and numpy arrays
next to a Tensor become constants of its element type. Window arguments accept an int (both
spatial dimensions), a pair ``(h, w)``, and for padding also ``[top, left, bottom, right]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hal_core.errors import UsageError
from hal_core.ir.builder import Tensor

IntOrPair = int | Sequence[int]


def _first_tensor(op: str, *xs: Any) -> Tensor:
    for x in xs:
        if isinstance(x, Tensor):
            return x
    raise UsageError(f"{op}(): at least one operand must be a builder Tensor, found"
                     f" {[type(x).__name__ for x in xs]}")


def _binary(name: str, x: Any, y: Any) -> Tensor:
    t = _first_tensor(name, x, y)
    return t.fb.op(name, t.fb.lift(x, t), t.fb.lift(y, t))


def add(x: Any, y: Any) -> Tensor: return _binary("add", x, y)
def sub(x: Any, y: Any) -> Tensor: return _binary("sub", x, y)
def mul(x: Any, y: Any) -> Tensor: return _binary("mul", x, y)
def div(x: Any, y: Any) -> Tensor: return _binary("div", x, y)
def pow(x: Any, y: Any) -> Tensor: return _binary("pow", x, y)
def maximum(x: Any, y: Any) -> Tensor: return _binary("maximum", x, y)
def minimum(x: Any, y: Any) -> Tensor: return _binary("minimum", x, y)
def eq(x: Any, y: Any) -> Tensor: return _binary("eq", x, y)
def ne(x: Any, y: Any) -> Tensor: return _binary("ne", x, y)
def lt(x: Any, y: Any) -> Tensor: return _binary("lt", x, y)
def le(x: Any, y: Any) -> Tensor: return _binary("le", x, y)
def gt(x: Any, y: Any) -> Tensor: return _binary("gt", x, y)
def ge(x: Any, y: Any) -> Tensor: return _binary("ge", x, y)
def logical_and(x: Any, y: Any) -> Tensor: return _binary("logical_and", x, y)
def logical_or(x: Any, y: Any) -> Tensor: return _binary("logical_or", x, y)
def logical_xor(x: Any, y: Any) -> Tensor: return _binary("logical_xor", x, y)
def logical_not(x: Tensor) -> Tensor: return x.fb.op("logical_not", x)


def _unary(name: str):
    def fn(x: Tensor) -> Tensor:
        return x.fb.op(name, x)
    fn.__name__ = name
    fn.__doc__ = f"Elementwise {name}."
    return fn


exp, log, sqrt, rsqrt, tanh, sigmoid, erf = (_unary(n) for n in (
    "exp", "log", "sqrt", "rsqrt", "tanh", "sigmoid", "erf"))
floor, ceil, round, neg, abs, relu = (_unary(n) for n in (
    "floor", "ceil", "round", "neg", "abs", "relu"))


def clip(x: Tensor, min: float | None = None, max: float | None = None) -> Tensor:
    return x.clip(min, max)


def cast(x: Tensor, dtype: Any) -> Tensor:
    return x.astype(dtype)


def where(condition: Any, x: Any, y: Any) -> Tensor:
    """``select``: elementwise ``x if condition else y``, with broadcasting."""
    like = next((v for v in (x, y) if isinstance(v, Tensor)), None)
    fb = _first_tensor("where", condition, x, y).fb
    cond = condition if isinstance(condition, Tensor) else fb.constant(condition, "i1")
    if like is None:  # only the condition is a tensor: constants take the builder's defaults
        return fb.op("select", cond, fb.constant(x), fb.constant(y))
    return fb.op("select", cond, fb.lift(x, like), fb.lift(y, like))


select = where


def sum(x: Tensor, axis: IntOrPair | None = None, keepdims: bool = False) -> Tensor:
    return x.sum(axis, keepdims)


def mean(x: Tensor, axis: IntOrPair | None = None, keepdims: bool = False) -> Tensor:
    return x.mean(axis, keepdims)


def prod(x: Tensor, axis: IntOrPair | None = None, keepdims: bool = False) -> Tensor:
    return x.prod(axis, keepdims)


def max(x: Tensor, axis: IntOrPair | None = None, keepdims: bool = False) -> Tensor:
    return x.max(axis, keepdims)


def min(x: Tensor, axis: IntOrPair | None = None, keepdims: bool = False) -> Tensor:
    return x.min(axis, keepdims)


def argmax(x: Tensor, axis: int = -1, keepdims: bool = False) -> Tensor:
    return x.argmax(axis, keepdims)


def argmin(x: Tensor, axis: int = -1, keepdims: bool = False) -> Tensor:
    return x.argmin(axis, keepdims)


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    return x.softmax(axis)


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    return x.log_softmax(axis)


def matmul(a: Tensor, b: Any, transpose_a: bool = False, transpose_b: bool = False) -> Tensor:
    return a.fb.op("matmul", a, a.fb.lift(b, a), transpose_a=transpose_a,
                   transpose_b=transpose_b)


def _ints(v: Sequence[int], name: str, shapes: str) -> tuple[int, ...]:
    try:
        return tuple(v)
    except TypeError:
        raise UsageError(f"{name} must be {shapes}, found {v!r}") from None


def _pair(v: IntOrPair, name: str) -> tuple[int, int]:
    t = (v, v) if isinstance(v, int) else _ints(v, name, "an int or a pair (h, w)")
    if len(t) != 2:
        raise UsageError(f"{name} must be an int or a pair (h, w), found {v!r}")
    return t  # type: ignore[return-value]


def _padding(v: IntOrPair) -> tuple[int, int, int, int]:
    if isinstance(v, int):
        return (v, v, v, v)
    t = _ints(v, "padding", "an int, a pair (h, w) or [top, left, bottom, right]")
    if len(t) == 2:
        return (t[0], t[1], t[0], t[1])
    if len(t) == 4:
        return t  # type: ignore[return-value]
    raise UsageError(f"padding must be an int, a pair (h, w) or [top, left, bottom, right],"
                     f" found {v!r}")


def conv2d(x: Tensor, weight: Any, bias: Any = None, *, strides: IntOrPair = 1,
           padding: IntOrPair = 0, dilations: IntOrPair = 1, groups: int = 1) -> Tensor:
    """NCHW input, OIHW weight, optional bias of shape (O,); ``groups=C`` is depthwise."""
    operands = [x, x.fb.lift(weight, x)] + ([] if bias is None else [x.fb.lift(bias, x)])
    return x.fb.op("conv2d", *operands, strides=_pair(strides, "strides"),
                   padding=_padding(padding), dilations=_pair(dilations, "dilations"),
                   groups=groups)


def max_pool2d(x: Tensor, kernel: IntOrPair, strides: IntOrPair = 1, padding: IntOrPair = 0,
               ceil_mode: bool = False) -> Tensor:
    """Max pooling; note ``strides`` defaults to 1 as in ONNX (PyTorch defaults to the kernel)."""
    return x.fb.op("max_pool2d", x, kernel=_pair(kernel, "kernel"),
                   strides=_pair(strides, "strides"), padding=_padding(padding),
                   ceil_mode=ceil_mode)


def avg_pool2d(x: Tensor, kernel: IntOrPair, strides: IntOrPair = 1, padding: IntOrPair = 0,
               ceil_mode: bool = False, count_include_pad: bool = False) -> Tensor:
    return x.fb.op("avg_pool2d", x, kernel=_pair(kernel, "kernel"),
                   strides=_pair(strides, "strides"), padding=_padding(padding),
                   ceil_mode=ceil_mode, count_include_pad=count_include_pad)


def global_max_pool2d(x: Tensor) -> Tensor:
    return x.fb.op("global_max_pool2d", x)


def global_avg_pool2d(x: Tensor) -> Tensor:
    return x.fb.op("global_avg_pool2d", x)


def transpose(x: Tensor, perm: Sequence[int] | None = None) -> Tensor:
    return x.transpose(*(perm or ()))


def reshape(x: Tensor, shape: Sequence[int]) -> Tensor:
    return x.reshape(tuple(shape))


def broadcast_to(x: Tensor, shape: Sequence[int]) -> Tensor:
    return x.broadcast_to(shape)


expand = broadcast_to


def concat(xs: Sequence[Tensor], axis: int = 0) -> Tensor:
    t = _first_tensor("concat", *xs)
    return t.fb.op("concat", *(t.fb.lift(x, t) for x in xs), axis=axis)


concatenate = concat


def slice(x: Tensor, starts: Sequence[int], ends: Sequence[int],
          steps: Sequence[int] | None = None) -> Tensor:
    steps = tuple(steps) if steps is not None else (1,) * len(tuple(starts))
    return x.fb.op("slice", x, starts=tuple(starts), ends=tuple(ends), steps=steps)


def pad(x: Tensor, low: Sequence[int], high: Sequence[int], value: float = 0.0) -> Tensor:
    return x.fb.op("pad", x, low=tuple(low), high=tuple(high), value=value)


def gather(x: Tensor, indices: Any, axis: int = 0) -> Tensor:
    """numpy ``take``: ``indices`` may be a Tensor or an integer array (made a constant)."""
    if not isinstance(indices, Tensor):
        indices = x.fb.constant(indices, "i64")
    return x.fb.op("gather", x, indices, axis=axis)


take = gather
