"""Print tensor IR as text; the grammar is documented in :mod:`hal_core.ir.parser`.

The printed form is canonical: attributes in registry order with defaults left out, every op
with its full type signature, functions separated by a blank line, a final newline. Dense
constants print as a splat (``dense<0.0>``) when all elements are bitwise equal, as nested
lists up to ``HEX_THRESHOLD`` elements, and as little-endian hex bytes (``dense<"0x...">``)
beyond, so large weights stay compact and exact.
"""

from __future__ import annotations

from typing import Any

from hal_core.ir.module import Function, Module, Operation
from hal_core.ir.opdefs import OPS, AttrSpec
from hal_core.ir.types import TensorType

HEX_THRESHOLD = 256


def print_module(module: Module) -> str:
    return "\n".join(print_function(f) for f in module.functions)


def print_function(fn: Function) -> str:
    args = ", ".join(f"%{a.name}: {a.type}" for a in fn.args)
    results = fn.result_types
    sig = str(results[0]) if len(results) == 1 else f"({', '.join(map(str, results))})"
    lines = [f"func.func @{fn.name}({args}) -> {sig} {{"]
    lines += [f"  {print_operation(op)}" for op in fn.body]
    ret = "  return"
    if fn.results:
        ret += " " + ", ".join(f"%{v.name}" for v in fn.results)
        ret += " : " + ", ".join(str(v.type) for v in fn.results)
    lines += [ret, "}", ""]
    return "\n".join(lines)


def print_operation(op: Operation) -> str:
    head = f"%{op.result.name} = {op.name}"
    if op.name == "constant":
        return f"{head} {print_dense(op.attrs['value'], op.type)} : {op.type}"
    if op.operands:
        head += " " + ", ".join(f"%{v.name}" for v in op.operands)
    opdef = OPS.get(op.name)
    specs = opdef.attrs if opdef else tuple(AttrSpec(k, "?") for k in op.attrs)
    shown = [f"{s.name} = {print_attr(op.attrs[s.name])}" for s in specs
             if s.name in op.attrs and not _is_default(s, op.attrs[s.name])]
    if shown:
        head += " {" + ", ".join(shown) + "}"
    types = ", ".join(str(v.type) for v in op.operands)
    return f"{head} : ({types}) -> {op.type}"


def _is_default(spec: AttrSpec, value: Any) -> bool:
    d = spec.default
    if isinstance(d, float) and isinstance(value, float):
        return repr(d) == repr(value)  # tells -0.0 from 0.0 and matches inf
    return type(d) is type(value) and d == value


def print_attr(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(print_attr(v) for v in value) + "]"
    if isinstance(value, str):
        return value  # element types print bare
    if hasattr(value, "dtype"):
        return print_dense(value, TensorType(value.shape, value.dtype.name))
    raise TypeError(f"cannot print attribute value {value!r}")


def _float(x: float) -> str:
    r = repr(float(x))
    return r if any(c in r for c in ".en") else r + ".0"  # 'inf', 'nan' contain n


def _scalar(x: Any, dtype: str) -> str:
    if dtype == "i1":
        return "true" if bool(x) else "false"
    if dtype.startswith("f"):
        s = str(x)  # numpy prints the shortest text that reads back to the same value
        return s if any(c in s for c in ".en") else s + ".0"
    return str(int(x))


def print_dense(array: Any, type_: TensorType) -> str:
    import numpy as np

    a = np.asarray(array)
    if a.size == 0:
        return "dense<[]>"
    flat = a.reshape(-1)
    bits = flat.view(f"u{a.itemsize}")  # bitwise, so NaN and -0.0 count as themselves
    if bool((bits == bits[0]).all()):
        return f"dense<{_scalar(flat[0], type_.dtype)}>"
    if a.size > HEX_THRESHOLD:
        data = np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<"), copy=False)
        return f'dense<"0x{data.tobytes().hex().upper()}">'

    def nest(x: Any) -> str:
        if x.ndim == 0:
            return _scalar(x[()], type_.dtype)
        return "[" + ", ".join(nest(x[i]) for i in range(x.shape[0])) + "]"

    return f"dense<{nest(a)}>"
