"""The op registry of the tensor IR: every op's name, operands, attributes and type inference.

Each :class:`OpDef` names its operands (for messages), says which trailing operands are optional
or repeat, lists its attributes (:class:`AttrSpec`: name, kind, default) and carries ``infer``,
which maps operand types and complete attributes to the result type or raises :class:`OpError`
naming the offending operand or attribute. The verifier, the parser and the builder all go
through :func:`infer_type`, so the rules live in one place.

Attribute kinds: ``int``, ``float``, ``bool``, ``ints`` (a tuple of ints), ``dtype`` (an IR
element type name) and ``dense`` (a numpy array; only ``constant.value``).

Semantics follow numpy unless stated: elementwise ops broadcast; binary ops need equal element
types (no implicit promotion); integer ``div`` truncates toward zero. Padding of conv2d and the
pools is ``[top, left, bottom, right]`` (ONNX order). ``slice`` takes per-dimension starts,
ends and steps with Python slice semantics (negative indices count from the end, out-of-range
bounds clamp, steps may be negative, never zero).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hal_core.errors import VerificationError
from hal_core.ir.types import (
    TensorType,
    element_type,
)

REQUIRED: Any = type("Required", (), {"__repr__": lambda self: "REQUIRED"})()
ATTR_KINDS = ("int", "float", "bool", "ints", "dtype", "dense")


class OpError(Exception):
    """Raised by inference; the verifier turns it into a VerificationError naming the op."""

    def __init__(self, message: str, operand: int | None = None,
                 attr: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.operand = operand
        self.attr = attr

    def text(self, opdef: OpDef, operands: Sequence[Any]) -> str:
        """The message, led by the operand at fault (``operand #1 (rhs) %b: ...``) if any."""
        if self.operand is None or self.operand >= len(operands):
            return self.message
        return (f"operand #{self.operand} ({opdef.operand_name(self.operand)}) "
                f"%{operands[self.operand].name}: {self.message}")


@dataclass(frozen=True)
class AttrSpec:
    name: str
    kind: str            # one of ATTR_KINDS
    default: Any = REQUIRED


@dataclass(frozen=True)
class OpDef:
    name: str
    operands: tuple[str, ...]      # operand names, for messages
    attrs: tuple[AttrSpec, ...]
    infer: Callable[[tuple[TensorType, ...], Mapping[str, Any]], TensorType]
    category: str                  # elementwise | reduction | matmul | conv | pool | shape | constant
    optional: int = 0              # how many trailing operands may be left out
    variadic: bool = False         # the last operand repeats (one or more)

    @property
    def min_operands(self) -> int:
        return len(self.operands) - self.optional

    @property
    def max_operands(self) -> int | None:
        return None if self.variadic else len(self.operands)

    def operand_name(self, i: int) -> str:
        return self.operands[min(i, len(self.operands) - 1)]

    def attr(self, name: str) -> AttrSpec | None:
        for a in self.attrs:
            if a.name == name:
                return a
        return None


OPS: dict[str, OpDef] = {}


def _register(name: str, operands: Sequence[str], infer: Callable[..., TensorType],
              category: str, attrs: Sequence[AttrSpec] = (), optional: int = 0,
              variadic: bool = False) -> None:
    OPS[name] = OpDef(name, tuple(operands), tuple(attrs), infer, category, optional, variadic)


def get_opdef(name: str) -> OpDef:
    """The OpDef for ``name``; unknown names raise VerificationError with a did-you-mean."""
    try:
        return OPS[name]
    except KeyError:
        raise VerificationError(unknown_op_message(name)) from None


def unknown_op_message(name: str) -> str:
    close = difflib.get_close_matches(name, OPS, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else \
        "; see hal_core.ir.opdefs.OPS for the list of ops"
    return f"unknown op {name!r}{hint}"


# -- attributes ---------------------------------------------------------------------------------

def _coerce(spec: AttrSpec, value: Any) -> Any:
    kind = spec.kind
    if kind == "bool":
        if isinstance(value, bool):
            return value
    elif kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return int(value)
        if hasattr(value, "dtype") and getattr(value, "shape", None) == () \
                and value.dtype.kind in "iu":
            return int(value)
    elif kind == "float":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if hasattr(value, "dtype") and getattr(value, "shape", None) == ():
            return float(value)
    elif kind == "ints":
        if isinstance(value, (list, tuple)) and all(
                isinstance(v, int) and not isinstance(v, bool) or
                hasattr(v, "dtype") and v.dtype.kind in "iu" for v in value):
            return tuple(int(v) for v in value)
    elif kind == "dtype":
        if isinstance(value, str) or hasattr(value, "name"):
            try:
                return element_type(value if isinstance(value, str) else value.name)
            except VerificationError as e:
                raise OpError(f"attribute '{spec.name}': {e}", attr=spec.name) from None
    elif kind == "dense" and hasattr(value, "dtype") and hasattr(value, "shape"):
        try:
            element_type(value.dtype.name)  # rejects dtypes the IR has no name for
        except VerificationError as e:
            raise OpError(f"attribute '{spec.name}': {e}", attr=spec.name) from None
        if not value.dtype.isnative:
            value = value.astype(value.dtype.newbyteorder("="))
        if value.flags.writeable:
            value = value.copy()
            value.setflags(write=False)
        return value
    expected = {"ints": "a list of integers", "dtype": "an element type such as f32",
                "dense": "a numpy array"}.get(kind, f"a {kind}")
    raise OpError(f"attribute '{spec.name}' must be {expected}, found {value!r}",
                  attr=spec.name)


def normalize_attrs(opdef: OpDef, attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Check names and kinds, coerce (lists to tuples, ints to floats), fill defaults."""
    out: dict[str, Any] = {}
    for key in attrs:
        if opdef.attr(key) is None:
            names = [a.name for a in opdef.attrs]
            close = difflib.get_close_matches(key, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            allowed = ", ".join(names) or "none"
            raise OpError(f"unknown attribute {key!r} (allowed: {allowed}){hint}", attr=key)
    for spec in opdef.attrs:
        if spec.name in attrs:
            out[spec.name] = _coerce(spec, attrs[spec.name])
        elif spec.default is REQUIRED:
            raise OpError(f"missing required attribute {spec.name!r} ({spec.kind})",
                          attr=spec.name)
        else:
            out[spec.name] = spec.default
    return out


def infer_type(opdef: OpDef, operand_types: Sequence[TensorType],
               attrs: Mapping[str, Any]) -> TensorType:
    """Result type of an op; raises OpError. ``attrs`` must be complete (normalize_attrs)."""
    n = len(operand_types)
    hi = opdef.max_operands
    if n < opdef.min_operands or (hi is not None and n > hi):
        want = (f"{opdef.min_operands} or more" if hi is None else
                str(hi) if hi == opdef.min_operands else f"{opdef.min_operands} to {hi}")
        raise OpError(f"expected {want} operands ({', '.join(opdef.operands)}), found {n}")
    return opdef.infer(tuple(operand_types), attrs)


# -- shared checks ------------------------------------------------------------------------------

def broadcast_shapes(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    """numpy broadcasting of shapes; raises OpError naming the first operand that clashes."""
    rank = max((len(s) for s in shapes), default=0)
    out = [1] * rank
    for i, s in enumerate(shapes):
        for j, d in enumerate(s):
            k = rank - len(s) + j
            if d == out[k] or d == 1:
                continue
            if out[k] == 1:
                out[k] = d
            else:
                raise OpError(f"shape {s} cannot be broadcast with {tuple(shapes[0])}"
                              f" (dimension {j}: {d} vs {out[k]}); numpy broadcasting needs"
                              " equal dimensions or 1", operand=i)
    return tuple(out)


def _dtypes(t: TensorType, i: int, allowed: frozenset[str], what: str) -> None:
    if t.dtype not in allowed:
        raise OpError(f"expected {what} element type, found {t.dtype}", operand=i)


def _same_dtype(types: Sequence[TensorType], first: int = 0) -> None:
    for i, t in enumerate(types[first + 1:], first + 1):
        if t.dtype != types[first].dtype:
            raise OpError(f"expected element type {types[first].dtype} (same as operand"
                          f" #{first}), found {t.dtype}", operand=i)


def normalize_axis(axis: int, rank: int, attr: str = "axis") -> int:
    """``axis`` in [0, rank); negative axes count from the end, as in numpy."""
    if rank == 0:
        raise OpError(f"attribute '{attr}' = {axis} names an axis, but the operand has rank 0;"
                      " reshape it to rank 1 first", operand=0, attr=attr)
    if not -rank <= axis < rank:
        raise OpError(f"attribute '{attr}' must be in [{-rank}, {rank}), found {axis}",
                      attr=attr)
    return axis % rank


def _ints_len(attrs: Mapping[str, Any], name: str, n: int, minimum: int | None = None) -> None:
    v = attrs[name]
    if len(v) != n:
        raise OpError(f"attribute '{name}' must have {n} values, found {len(v)}", attr=name)
    if minimum is not None and any(x < minimum for x in v):
        raise OpError(f"attribute '{name}' values must be >= {minimum}, found {list(v)}",
                      attr=name)


def _rank(t: TensorType, i: int, rank: int, what: str) -> None:
    if t.rank != rank:
        raise OpError(f"expected a rank-{rank} tensor ({what}), found {t}", operand=i)


# Import the op table last: it registers every op through _register.
from hal_core.ir import opdefs_table  # noqa: F401
