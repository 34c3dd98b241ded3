"""Scalar bodies: tensor-IR values evaluated point by point, as kernel IR SSA.

A :class:`BodyBuilder` turns "value ``v`` at indexing map ``m``" into a kernel :class:`ValueRef`:
buffers become ``Input`` s (one per distinct buffer and map), inlined ops become ``ScalarOp`` s,
splat constants become ``Const`` s. Shared subexpressions (same value, same map) are emitted once.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from hal_core.compiler import kernel_ir as K
from hal_core.compiler.passes.folding import splat_value
from hal_core.compiler.passes.fusion import ELEMENTWISE, FusionPlan, canonical, operand_maps
from hal_core.ir.module import Operation, Value

_SAME = {"add": "add", "sub": "sub", "mul": "mul", "div": "div", "pow": "pow",
         "maximum": "max", "minimum": "min", "logical_not": "not",
         "logical_and": "and", "logical_or": "or"}
_UNARY = ("exp", "log", "sqrt", "rsqrt", "tanh", "sigmoid", "erf", "floor", "ceil", "round",
          "neg", "abs", "relu")
_CMP = {"eq": "cmp_eq", "ne": "cmp_ne", "lt": "cmp_lt", "le": "cmp_le", "gt": "cmp_gt",
        "ge": "cmp_ge", "logical_xor": "cmp_ne"}


def py_scalar(value: object, dtype: str) -> int | float | bool:
    """A Python number of the kind kernel IR's ``Const`` carries for ``dtype``."""
    if dtype == "bool":
        return bool(value)
    if dtype in K.FLOAT_DTYPES:
        return float(value)  # type: ignore[arg-type]
    return int(value)  # type: ignore[call-overload]


class Bindings:
    """The buffers of one kernel: binding i is the storage of ``values[i]``."""

    def __init__(self, storage_of: Callable[[Value], Value]) -> None:
        self.storage_of = storage_of
        self.values: list[Value] = []
        self.written: set[int] = set()

    def operand(self, v: Value, written: bool = False) -> K.KernelOperand:
        root = self.storage_of(v)
        if root not in self.values:
            self.values.append(root)
        b = self.values.index(root)
        if written:
            self.written.add(b)
        return K.KernelOperand(b, v.type.shape, v.type.numpy_dtype)


class BodyBuilder:
    """Builds one SSA body over an index space of ``ndims`` dims.

    ``acc`` = (value, make) makes ``value`` stand for a kernel result: the first time ``value``
    is needed, ``make(self)`` emits what computes it from ``Acc(0)`` (epilogues, finalizers).
    """

    def __init__(self, plan: FusionPlan, ndims: int, bindings: Bindings,
                 acc: tuple[Value, Callable[[BodyBuilder], K.ValueRef]] | None = None) -> None:
        self.plan = plan
        self.ndims = ndims
        self.bindings = bindings
        self.acc = acc
        self.inputs: list[K.MappedOperand] = []
        self.body: list[K.ScalarOp] = []
        self._memo: dict[tuple[str, K.IndexingMap], K.ValueRef] = {}

    def emit(self, opcode: str, args: tuple[K.ValueRef, ...], dtype: str) -> K.ValueRef:
        op = K.ScalarOp(opcode, args, dtype)
        for i, old in enumerate(self.body):  # CSE: identical ops on identical args
            if old == op:
                return K.Result(i)
        self.body.append(op)
        return K.Result(len(self.body) - 1)

    def cast(self, ref: K.ValueRef, src: str, dst: str) -> K.ValueRef:
        return ref if src == dst else self.emit("cast", (ref,), dst)

    def read(self, v: Value, m: K.IndexingMap) -> K.ValueRef:
        mapped = K.MappedOperand(self.bindings.operand(v), canonical(m, v.type.shape))
        if mapped not in self.inputs:
            self.inputs.append(mapped)
        return K.Input(self.inputs.index(mapped))

    def value(self, v: Value, m: K.IndexingMap, root: bool = False) -> K.ValueRef:
        """``v`` at ``m``; ``root``: ``v`` is what the kernel computes, so expand it."""
        key = (v.name, m)
        if key in self._memo:
            return self._memo[key]
        if self.acc is not None and v.name == self.acc[0].name:
            ref = self.acc[1](self)
        elif not root and not self.plan.inlined(v):
            ref = self.read(v, m)
        else:
            op = self.plan.producers[v.name]
            if op.name == "constant":
                ref = self.constant(op)
            else:
                args = [self.value(o, om) for o, om in zip(op.operands, operand_maps(op, m))]
                ref = self.scalar_op(op, args) if op.name in ELEMENTWISE else args[0]
        self._memo[key] = ref
        return ref

    def constant(self, op: Operation) -> K.Const:
        """A splat (or empty) constant as a scalar."""
        s = splat_value(op)
        dt = op.type.numpy_dtype
        return K.Const(py_scalar(0 if s is None else s.item(), dt), dt)

    def scalar_op(self, op: Operation, args: list[K.ValueRef]) -> K.ValueRef:
        dt = op.type.numpy_dtype
        name = op.name
        if name in _SAME:
            return self.emit(_SAME[name], tuple(args), dt)
        if name in _UNARY:
            return self.emit(name, tuple(args), dt)
        if name in _CMP:
            return self.emit(_CMP[name], tuple(args), "bool")
        if name == "cast":
            return self.cast(args[0], op.operands[0].type.numpy_dtype, dt)
        if name == "select":
            return self.emit("select", tuple(args), dt)
        if name == "clip":
            return self._clip(args[0], op.attrs["min"], op.attrs["max"], dt)
        raise AssertionError(f"no scalar form for elementwise op {name!r}")

    def _clip(self, x: K.ValueRef, lo: float, hi: float, dt: str) -> K.ValueRef:
        if dt not in K.FLOAT_DTYPES:  # integer bounds as the reference evaluator rounds them
            import numpy as np

            info = np.iinfo(dt)
            lo = info.min if lo == -math.inf else max(info.min, min(info.max, math.ceil(lo)))
            hi = info.max if hi == math.inf else min(info.max, max(info.min, math.floor(hi)))
            lo = None if lo == info.min else lo  # type: ignore[assignment]
            hi = None if hi == info.max else hi  # type: ignore[assignment]
        else:
            lo = None if lo == -math.inf else lo  # type: ignore[assignment]
            hi = None if hi == math.inf else hi  # type: ignore[assignment]
        if lo is not None and hi is not None:
            return self.emit("clip", (x, K.Const(py_scalar(lo, dt), dt),
                                      K.Const(py_scalar(hi, dt), dt)), dt)
        if lo is not None:
            x = self.emit("max", (x, K.Const(py_scalar(lo, dt), dt)), dt)
        if hi is not None:
            x = self.emit("min", (x, K.Const(py_scalar(hi, dt), dt)), dt)
        return x

    def epilogue(self, yields: tuple[K.ValueRef, ...]) -> K.Epilogue:
        return K.Epilogue(tuple(self.body), yields, tuple(self.inputs))
