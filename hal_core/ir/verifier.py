"""Check a tensor IR program: SSA well-formedness, attributes, and every op's types and shapes.

Errors are :class:`~hal_core.errors.VerificationError` whose message names the function, the
op, its location when it was parsed, the operand or attribute at fault, what was expected and
what was found.
"""

from __future__ import annotations

import re

from hal_core.errors import VerificationError
from hal_core.ir.module import Function, Module, Operation, Value
from hal_core.ir.opdefs import OPS, OpError, infer_type, normalize_attrs, unknown_op_message

VALUE_NAME = re.compile(r"[A-Za-z0-9_.$-]+")
FUNCTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.$]*")


def verify_module(module: Module) -> None:
    seen: set[str] = set()
    for fn in module.functions:
        if fn.name in seen:
            raise VerificationError(f"function @{fn.name} is defined twice in the module;"
                                    " rename one of them")
        seen.add(fn.name)
        verify_function(fn)


def op_context(fn: Function, op: Operation) -> str:
    where = f"{op.loc}: " if op.loc else ""
    return f"{where}in @{fn.name}: op '{op.name}' (result %{op.result.name})"


def _check_name(fn: Function, v: Value) -> None:
    if not VALUE_NAME.fullmatch(v.name):
        raise VerificationError(f"in @{fn.name}: value name {v.name!r} cannot be written in"
                                " the text form; use letters, digits and _ . $ -")


def verify_function(fn: Function) -> None:
    if not FUNCTION_NAME.fullmatch(fn.name):
        raise VerificationError(f"function name {fn.name!r} cannot be written in the text form;"
                                " start with a letter or _, then letters, digits, _ . $")
    defined: dict[str, Value] = {}
    for a in fn.args:
        _check_name(fn, a)
        if a.name in defined:
            raise VerificationError(f"in @{fn.name}: argument %{a.name} is declared twice")
        defined[a.name] = a
    for op in fn.body:
        ctx = op_context(fn, op)
        verify_operation(op, ctx)
        for i, v in enumerate(op.operands):
            if defined.get(v.name) != v:
                what = "is not defined before this op" if v.name not in defined else \
                    f"has type {defined[v.name].type} where it is defined"
                raise VerificationError(f"{ctx}: operand #{i} %{v.name} ({v.type}) {what}")
        _check_name(fn, op.result)
        if op.result.name in defined:
            raise VerificationError(f"{ctx}: value %{op.result.name} is defined twice; SSA"
                                    " values are defined once")
        defined[op.result.name] = op.result
    for i, v in enumerate(fn.results):
        if defined.get(v.name) != v:
            raise VerificationError(f"in @{fn.name}: returned value #{i} %{v.name} ({v.type})"
                                    " is not defined in the function")


def verify_operation(op: Operation, ctx: str | None = None) -> None:
    """Check one op's attributes and that its result type is the inferred one."""
    ctx = ctx or (f"{op.loc}: " if op.loc else "") + f"op '{op.name}' (result %{op.result.name})"
    opdef = OPS.get(op.name)
    if opdef is None:
        raise VerificationError(f"{ctx}: {unknown_op_message(op.name)}")
    try:
        attrs = normalize_attrs(opdef, op.attrs)
        if attrs.keys() != op.attrs.keys():
            missing = [k for k in attrs if k not in op.attrs]
            raise OpError(f"attributes {missing} are missing; build ops through the builder or"
                          " normalize_attrs so defaults are filled in", attr=missing[0])
        inferred = infer_type(opdef, [v.type for v in op.operands], attrs)
    except OpError as e:
        raise VerificationError(f"{ctx}: {e.text(opdef, op.operands)}") from None
    if inferred != op.type:
        raise VerificationError(f"{ctx}: result type: expected {inferred} (inferred from the"
                                f" operands), found {op.type}")
