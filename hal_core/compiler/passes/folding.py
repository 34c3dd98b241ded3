"""Constant folding and dead-code elimination on tensor IR.

An op whose operands are all constants is replaced by a ``constant`` holding its value, computed
by the reference evaluator (:mod:`hal_core.ir.reference`), so folding means exactly what the IR
means. Results larger than :data:`FOLD_LIMIT` elements are folded only when they are splats of
splats (``expand(constant 0.0)`` to 1024x1024 stays one number, never a megabyte constant):
those are computed on one element and kept as a broadcast view, which prints as ``dense<v>``.
"""

from __future__ import annotations

import logging
from typing import Any

from hal_core.errors import CompileError, HalError
from hal_core.ir.module import Function, Module, Operation, Value
from hal_core.ir.opdefs import OPS
from hal_core.ir.types import TensorType
from hal_core.ir.verifier import op_context

log = logging.getLogger(__name__)

#: Largest result (in elements) folded into a dense constant.
FOLD_LIMIT = 1 << 16
#: Ops whose result is a splat when every operand is one.
_SPLAT_PRESERVING = frozenset(
    [n for n, d in OPS.items() if d.category == "elementwise"]
    + ["expand", "transpose", "reshape", "slice"])


def is_splat(array: Any) -> bool:
    flat = array.reshape(-1)
    return array.size > 0 and flat[:1].tobytes() * array.size == array.tobytes()


def splat_value(op: Operation) -> Any | None:
    """The one element of a splat ``constant`` op (a numpy scalar), else None."""
    if op.name != "constant":
        return None
    value = op.attrs["value"]
    if value.size == 0:
        return None
    if value.strides and all(s == 0 for s in value.strides):  # our own broadcast view
        return value.reshape(-1)[0]
    return value.reshape(-1)[0] if is_splat(value) else None


def fold_constants(module: Module) -> Module:
    return Module(tuple(_fold_function(fn) for fn in module.functions))


def _fold_function(fn: Function) -> Function:
    import numpy as np

    from hal_core.ir.reference import evaluate_op

    consts: dict[str, Operation] = {}
    body = []
    for op in fn.body:
        if op.name.startswith("reduce_") and not op.attrs.get("axes", (0,)):
            # Reducing over no axis is the identity (a mean of one element each): say so with
            # a same-shape reshape, which later passes alias instead of running a kernel.
            op = Operation("reshape", op.operands, op.result, {"shape": tuple(op.type.shape)},
                           op.loc)
        if op.name == "constant":
            consts[op.result.name] = op
            body.append(op)
            continue
        producers = [consts.get(v.name) for v in op.operands]
        if any(p is None for p in producers):
            body.append(op)
            continue
        try:
            value = _fold_one(op, producers, np, evaluate_op)
        except HalError as exc:  # e.g. gather indices out of range: say where
            raise CompileError(f"{op_context(fn, op)}: cannot fold constant operands: "
                               f"{exc}") from None
        if value is None:
            body.append(op)
            continue
        new = Operation("constant", (), op.result, {"value": value}, op.loc)
        log.debug("folded %s", op_context(fn, op))
        consts[op.result.name] = new
        body.append(new)
    return eliminate_dead_code(Function(fn.name, fn.args, tuple(body), fn.results, fn.loc))


def _fold_one(op: Operation, producers: list[Operation], np: Any, evaluate_op: Any) -> Any:
    t = op.type
    if t.size <= FOLD_LIMIT:
        result = evaluate_op(op, [p.attrs["value"] for p in producers])
        if t.size > 1 and is_splat(result):
            return _splat(np, result.reshape(-1)[0], t)
        return result
    if op.name not in _SPLAT_PRESERVING:
        return None
    scalars = [splat_value(p) for p in producers]
    if any(s is None for s in scalars):
        return None
    if op.name in ("expand", "transpose", "reshape", "slice"):
        return _splat(np, scalars[0], t)
    # Evaluate the elementwise op on rank-0 stand-ins of its operands.
    scalar_op = Operation(op.name, tuple(Value(f"s{i}", TensorType((), v.type.dtype))
                                         for i, v in enumerate(op.operands)),
                          Value(op.result.name, TensorType((), t.dtype)), op.attrs, op.loc)
    one = evaluate_op(scalar_op, [np.asarray(s) for s in scalars])
    return _splat(np, one[()], t)


def _splat(np: Any, scalar: Any, t: TensorType) -> Any:
    return np.broadcast_to(np.asarray(scalar, dtype=t.numpy_dtype), t.shape)  # read-only view


def eliminate_dead_code(fn: Function) -> Function:
    """Drop ops whose results nothing uses (every op is pure)."""
    live = {v.name for v in fn.results}
    kept = []
    for op in reversed(fn.body):
        if op.result.name in live:
            kept.append(op)
            live.update(v.name for v in op.operands)
    return Function(fn.name, fn.args, tuple(reversed(kept)), fn.results, fn.loc)
