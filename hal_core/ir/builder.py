"""Write tensor IR programs in Python with numpy-like calls.

    b = Builder()
    with b.function("main", [("x", (4, 4), "f32"), ("w", (4, 4), "f32")]) as f:
        x, w = f.args
        y = (x @ w + 2.0).exp().sum(axis=1, keepdims=True)
        f.ret(y)
    module = b.module()

Tensors support ``+ - * / ** @``, unary ``-``, ``abs()``, ``< <= > >=``, ``& | ^ ~`` (on i1)
and methods named as numpy's (``sum``, ``max``, ``reshape``, ``transpose``, ``astype``...).
``==`` keeps Python's identity meaning so tensors stay hashable: use ``.eq()`` / ``.ne()``.
Python scalars next to a tensor become constants of that tensor's element type. Free
functions for every op (``conv2d``, ``where``, ``concat``...) live in :mod:`hal_core.ir.ops`.
Every op is type-checked when built: a mistake raises VerificationError at the line that made it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from hal_core.errors import UsageError, VerificationError
from hal_core.ir.module import Function, Module, Operation, Value
from hal_core.ir.opdefs import get_opdef
from hal_core.ir.types import TensorType, element_type, numpy_dtype_name


class Tensor:
    """A value under construction in a FunctionBuilder."""

    __array_ufunc__ = None  # make numpy hand `ndarray + Tensor` to Tensor.__radd__

    def __init__(self, fb: FunctionBuilder, value: Value) -> None:
        self.fb = fb
        self.value = value

    @property
    def type(self) -> TensorType:
        return self.value.type

    @property
    def shape(self) -> tuple[int, ...]:
        return self.value.type.shape

    @property
    def dtype(self) -> str:
        return self.value.type.dtype

    @property
    def ndim(self) -> int:
        return self.value.type.rank

    @property
    def size(self) -> int:
        return self.value.type.size

    def __repr__(self) -> str:
        return f"Tensor(%{self.value.name}: {self.type})"

    def __bool__(self) -> bool:
        raise UsageError(f"{self!r} has no truth value while a program is being built; use"
                         " hal_core.ir.ops.where for a choice made at run time")

    def __len__(self) -> int:
        if not self.shape:
            raise UsageError(f"len() of the rank-0 {self!r}")
        return self.shape[0]

    def __iter__(self) -> Iterator[Tensor]:
        return (self[i] for i in range(len(self)))

    def _op(self, name: str, *others: Any, **attrs: Any) -> Tensor:
        return self.fb.op(name, self, *(self.fb.lift(o, self) for o in others), **attrs)

    def _rop(self, name: str, other: Any) -> Tensor:
        return self.fb.op(name, self.fb.lift(other, self), self)

    # arithmetic
    def __add__(self, o: Any) -> Tensor: return self._op("add", o)
    def __radd__(self, o: Any) -> Tensor: return self._rop("add", o)
    def __sub__(self, o: Any) -> Tensor: return self._op("sub", o)
    def __rsub__(self, o: Any) -> Tensor: return self._rop("sub", o)
    def __mul__(self, o: Any) -> Tensor: return self._op("mul", o)
    def __rmul__(self, o: Any) -> Tensor: return self._rop("mul", o)
    def __truediv__(self, o: Any) -> Tensor: return self._op("div", o)
    def __rtruediv__(self, o: Any) -> Tensor: return self._rop("div", o)
    def __pow__(self, o: Any) -> Tensor: return self._op("pow", o)
    def __rpow__(self, o: Any) -> Tensor: return self._rop("pow", o)
    def __matmul__(self, o: Any) -> Tensor: return self._op("matmul", o)
    def __rmatmul__(self, o: Any) -> Tensor: return self._rop("matmul", o)
    def __neg__(self) -> Tensor: return self._op("neg")
    def __abs__(self) -> Tensor: return self._op("abs")
    def __lt__(self, o: Any) -> Tensor: return self._op("lt", o)
    def __le__(self, o: Any) -> Tensor: return self._op("le", o)
    def __gt__(self, o: Any) -> Tensor: return self._op("gt", o)
    def __ge__(self, o: Any) -> Tensor: return self._op("ge", o)
    def __and__(self, o: Any) -> Tensor: return self._op("logical_and", o)
    def __or__(self, o: Any) -> Tensor: return self._op("logical_or", o)
    def __xor__(self, o: Any) -> Tensor: return self._op("logical_xor", o)
    def __invert__(self) -> Tensor: return self._op("logical_not")
    def eq(self, o: Any) -> Tensor: return self._op("eq", o)
    def ne(self, o: Any) -> Tensor: return self._op("ne", o)
    def lt(self, o: Any) -> Tensor: return self._op("lt", o)
    def le(self, o: Any) -> Tensor: return self._op("le", o)
    def gt(self, o: Any) -> Tensor: return self._op("gt", o)
    def ge(self, o: Any) -> Tensor: return self._op("ge", o)

    # elementwise math
    def exp(self) -> Tensor: return self._op("exp")
    def log(self) -> Tensor: return self._op("log")
    def sqrt(self) -> Tensor: return self._op("sqrt")
    def rsqrt(self) -> Tensor: return self._op("rsqrt")
    def tanh(self) -> Tensor: return self._op("tanh")
    def sigmoid(self) -> Tensor: return self._op("sigmoid")
    def erf(self) -> Tensor: return self._op("erf")
    def relu(self) -> Tensor: return self._op("relu")
    def floor(self) -> Tensor: return self._op("floor")
    def ceil(self) -> Tensor: return self._op("ceil")
    def round(self) -> Tensor: return self._op("round")
    def abs(self) -> Tensor: return self._op("abs")

    def clip(self, min: float | None = None, max: float | None = None) -> Tensor:
        attrs = {k: v for k, v in (("min", min), ("max", max)) if v is not None}
        return self._op("clip", **attrs)

    def astype(self, dtype: Any) -> Tensor:
        return self._op("cast", to=element_type(getattr(dtype, "name", dtype)))

    # reductions
    def _axes(self, axis: int | Sequence[int] | None) -> tuple[int, ...]:
        if axis is None:
            return tuple(range(self.ndim))
        return tuple(axis) if hasattr(axis, "__iter__") else (axis,)

    def sum(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        return self._op("reduce_sum", axes=self._axes(axis), keepdims=keepdims)

    def prod(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        return self._op("reduce_prod", axes=self._axes(axis), keepdims=keepdims)

    def max(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        return self._op("reduce_max", axes=self._axes(axis), keepdims=keepdims)

    def min(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        return self._op("reduce_min", axes=self._axes(axis), keepdims=keepdims)

    def mean(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        return self._op("reduce_mean", axes=self._axes(axis), keepdims=keepdims)

    def argmax(self, axis: int = -1, keepdims: bool = False) -> Tensor:
        return self._op("argmax", axis=axis, keepdims=keepdims)

    def argmin(self, axis: int = -1, keepdims: bool = False) -> Tensor:
        return self._op("argmin", axis=axis, keepdims=keepdims)

    def softmax(self, axis: int = -1) -> Tensor:
        return self._op("softmax", axis=axis)

    def log_softmax(self, axis: int = -1) -> Tensor:
        return self._op("log_softmax", axis=axis)

    # shapes
    def reshape(self, *shape: int | Sequence[int]) -> Tensor:
        dims = _one_or_many(shape, "reshape")
        if dims.count(-1) == 1:
            known = 1
            for d in dims:
                known *= d if d != -1 else 1
            if known == 0 or self.size % known:
                raise VerificationError(f"cannot reshape {self.type} to {dims}: the sizes"
                                        " do not divide")
            dims[dims.index(-1)] = self.size // known
        return self._op("reshape", shape=tuple(dims))

    def transpose(self, *perm: int | Sequence[int]) -> Tensor:
        p = _one_or_many(perm, "transpose")
        return self._op("transpose", perm=tuple(p) or tuple(reversed(range(self.ndim))))

    @property
    def T(self) -> Tensor:
        return self.transpose()

    def broadcast_to(self, shape: Sequence[int]) -> Tensor:
        return self._op("expand", shape=tuple(shape))

    expand = broadcast_to

    def __getitem__(self, key: Any) -> Tensor:
        """Basic indexing: ints, slices (any step) and one Ellipsis."""
        key = tuple(k if k is Ellipsis or isinstance(k, slice) or not hasattr(k, "__index__")
                    else int(k) for k in (key if isinstance(key, tuple) else (key,)))
        if any(k is Ellipsis for k in key):
            i = key.index(Ellipsis)
            key = key[:i] + (slice(None),) * (self.ndim - len(key) + 1) + key[i + 1:]
        if len(key) > self.ndim or not all(isinstance(k, (int, slice)) for k in key):
            raise UsageError(f"unsupported index {key!r} for {self.type}: use ints, slices"
                             " and one Ellipsis, at most one per dimension")
        key = key + (slice(None),) * (self.ndim - len(key))
        starts, ends, steps, keep = [], [], [], []
        for d, k in zip(self.shape, key):
            if isinstance(k, int):
                if not -d <= k < d:
                    raise UsageError(f"index {k} is out of range for a dimension of size {d}")
                k = slice(k % d, k % d + 1, 1)
                keep.append(False)
            else:
                keep.append(True)
            first, stop, step = k.indices(d)
            if stop < 0:  # indices() says "before index 0" with -1; as a bound -1 means the last
                stop = -d - 1
            starts.append(first)
            ends.append(stop)
            steps.append(step)
        out = self._op("slice", starts=tuple(starts), ends=tuple(ends), steps=tuple(steps))
        if all(keep):
            return out
        return out.reshape(tuple(n for n, kp in zip(out.shape, keep) if kp))


def _one_or_many(args: tuple[Any, ...], what: str) -> list[int]:
    """``f(2, 3)`` and ``f((2, 3))`` alike, as numpy's reshape and transpose take them."""
    items = list(args[0]) if len(args) == 1 and hasattr(args[0], "__iter__") else list(args)
    if not all(hasattr(d, "__index__") and not isinstance(d, bool) for d in items):
        raise UsageError(f"{what}() takes integers, found {items!r}")
    return [d.__index__() for d in items]


class FunctionBuilder:
    """Builds one function; results are named %0, %1, ... in order of creation."""

    def __init__(self, name: str, args: Sequence[tuple[str, Sequence[int], Any]] = ()) -> None:
        self.name = name
        self._args: list[Value] = []
        self._ops: list[Operation] = []
        self._names: set[str] = set()
        self._counter = 0
        self._results: tuple[Value, ...] | None = None
        for a in args:
            self.arg(*a)

    @property
    def args(self) -> tuple[Tensor, ...]:
        return tuple(Tensor(self, v) for v in self._args)

    def arg(self, name: str, shape: Sequence[int], dtype: Any = "f32") -> Tensor:
        if name in self._names:
            raise UsageError(f"argument %{name} of @{self.name} is declared twice")
        from hal_core.ir.verifier import VALUE_NAME

        if not VALUE_NAME.fullmatch(name):
            raise UsageError(f"argument name {name!r} of @{self.name}: use letters, digits and"
                             " _ . $ - so that the text form can hold it")
        v = Value(name, TensorType(tuple(shape), dtype))
        self._names.add(name)
        self._args.append(v)
        return Tensor(self, v)

    def _fresh(self) -> str:
        while str(self._counter) in self._names:
            self._counter += 1
        name = str(self._counter)
        self._names.add(name)
        return name

    def op(self, name: str, *operands: Tensor, **attrs: Any) -> Tensor:
        """Append any op by registry name, e.g. ``f.op("conv2d", x, w, strides=(2, 2))``."""
        opdef = get_opdef(name)
        for i, t in enumerate(operands):
            if not isinstance(t, Tensor) or t.fb is not self:
                raise UsageError(f"op '{name}': operand #{i} must be a Tensor of @{self.name},"
                                 f" found {t!r}")
        try:
            op = Operation.create(opdef.name, [t.value for t in operands], self._fresh(), attrs)
        except VerificationError as e:
            raise VerificationError(f"in @{self.name}: {e}") from None
        self._ops.append(op)
        return Tensor(self, op.result)

    def constant(self, value: Any, dtype: Any = None) -> Tensor:
        """A constant. Without ``dtype``, numpy arrays keep theirs; Python data defaults
        (as torch does) to f32 for floats, i64 for ints, i1 for bools."""
        import numpy as np

        if dtype is not None:
            array = self._array(value, numpy_dtype_name(dtype))
        elif isinstance(value, np.ndarray | np.generic):
            array = np.array(value)
        else:
            array = self._array(value)
            if array.dtype.kind == "f":
                array = array.astype(np.float32)
        return self.op("constant", value=array)

    def _array(self, value: Any, dtype: str | None = None) -> Any:
        """``numpy.array(value, dtype)``, failing with a VerificationError (ragged lists,
        integers out of the dtype's range)."""
        import numpy as np

        try:
            return np.array(value, dtype=dtype)
        except (ValueError, OverflowError, TypeError) as e:
            wanted = f" of element type {element_type(dtype)}" if dtype else ""
            raise VerificationError(f"in @{self.name}: cannot make a constant{wanted} from "
                                    f"{value!r:.80}: {e}; pass a rectangular list of numbers "
                                    f"that fit the element type") from None

    def lift(self, x: Any, like: Tensor) -> Tensor:
        """``x`` as a Tensor; scalars and arrays become constants of ``like``'s element type."""
        if isinstance(x, Tensor):
            return x
        import numpy as np

        raw = self._array(x)
        target = np.dtype(like.type.numpy_dtype)
        with np.errstate(all="ignore"):
            array = raw.astype(target) if raw.dtype.kind in "biuf" else raw
            if target.kind == "f":  # rounding to the float type is expected, as in numpy
                ok = raw.dtype.kind in "iuf"
            elif target.kind in "iu":
                ok = raw.dtype.kind in "iu" and bool(np.all(array == raw))
            else:
                ok = raw.dtype.kind == "b"
        if not ok:
            raise VerificationError(f"in @{self.name}: cannot use {x!r} with a {like.dtype}"
                                    " tensor without changing its value; make a constant of"
                                    " the intended type or cast first")
        return self.op("constant", value=array)

    def ret(self, *values: Tensor) -> None:
        if self._results is not None:
            raise UsageError(f"@{self.name} already returned; call ret() once")
        for i, t in enumerate(values):
            if not isinstance(t, Tensor) or t.fb is not self:
                raise UsageError(f"ret(): value #{i} must be a Tensor of @{self.name},"
                                 f" found {t!r}")
        self._results = tuple(t.value for t in values)

    def build(self) -> Function:
        if self._results is None:
            raise UsageError(f"@{self.name} has no return: call f.ret(...) with its results")
        fn = Function(self.name, tuple(self._args), tuple(self._ops), self._results)
        from hal_core.ir.verifier import verify_function

        verify_function(fn)
        return fn


class Builder:
    """Builds a Module of one or more functions."""

    def __init__(self) -> None:
        self._functions: list[Function] = []

    @contextmanager
    def function(self, name: str, args: Sequence[tuple[str, Sequence[int], Any]] = ()
                 ) -> Iterator[FunctionBuilder]:
        fb = FunctionBuilder(name, args)
        yield fb
        self.add(fb.build())

    def add(self, fn: Function) -> None:
        if any(f.name == fn.name for f in self._functions):
            raise UsageError(f"function @{fn.name} is already in this module")
        self._functions.append(fn)

    def module(self) -> Module:
        from hal_core.ir.verifier import verify_module

        m = Module(tuple(self._functions))
        verify_module(m)
        return m
