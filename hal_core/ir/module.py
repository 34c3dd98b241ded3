"""The tensor IR's data structures: Value, Operation, Function, Module.

Everything is a frozen dataclass. A program is in SSA form: every Value is defined once, either
as a function argument or as the single result of an Operation, and is named uniquely within
its function (``a``, ``0``, ``x1``; printed ``%a``). A Value is identified by its name and type,
so it can be used as a dictionary key within one function.

Operations have exactly one result. ``Operation.attrs`` is a read-only mapping that always holds
every attribute of the op (defaults filled in by the parser and builder); tuples stand for
lists, and a ``constant``'s ``value`` is a read-only numpy array. ``loc`` records where a parsed
op came from and takes no part in equality.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from hal_core.errors import UsageError
from hal_core.ir.types import TensorType


@dataclass(frozen=True)
class Location:
    line: int
    column: int
    source: str = "<string>"

    def __str__(self) -> str:
        return f"{self.source}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Value:
    name: str  # without the leading '%'
    type: TensorType

    def __str__(self) -> str:
        return f"%{self.name}"


def _attr_equal(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return repr(a) == repr(b)  # NaN equals NaN, -0.0 differs from 0.0: as printed
    if hasattr(a, "dtype") or hasattr(b, "dtype"):  # numpy arrays: compare exactly, bitwise
        try:
            return (a.dtype == b.dtype and a.shape == b.shape
                    and a.tobytes() == b.tobytes())
        except AttributeError:
            return False
    return type(a) is type(b) and a == b


@dataclass(frozen=True, eq=False)
class Operation:
    name: str                         # op name from the registry, e.g. "add", "conv2d"
    operands: tuple[Value, ...]
    result: Value
    attrs: Mapping[str, Any] = field(default_factory=dict)
    loc: Location | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "operands", tuple(self.operands))
        if not isinstance(self.attrs, MappingProxyType):
            object.__setattr__(self, "attrs", MappingProxyType(dict(self.attrs)))

    @property
    def type(self) -> TensorType:
        return self.result.type

    @classmethod
    def create(cls, name: str, operands: Sequence[Value], result_name: str,
               attrs: Mapping[str, Any] | None = None, loc: Location | None = None
               ) -> Operation:
        """A checked op: attributes normalised (defaults filled), result type inferred.

        Raises VerificationError naming the op and the offending operand or attribute.
        """
        from hal_core.errors import VerificationError
        from hal_core.ir.opdefs import OpError, get_opdef, infer_type, normalize_attrs

        opdef = get_opdef(name)
        try:
            full = normalize_attrs(opdef, attrs or {})
            t = infer_type(opdef, [v.type for v in operands], full)
        except OpError as e:
            raise VerificationError(f"op '{name}' (result %{result_name}): "
                                    f"{e.text(opdef, operands)}") from None
        return cls(name, tuple(operands), Value(result_name, t), full, loc)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Operation):
            return NotImplemented
        return (self.name == other.name and self.operands == other.operands
                and self.result == other.result
                and self.attrs.keys() == other.attrs.keys()
                and all(_attr_equal(v, other.attrs[k]) for k, v in self.attrs.items()))

    def __hash__(self) -> int:
        return hash((self.name, self.operands, self.result))

    def __str__(self) -> str:
        from hal_core.ir.printer import print_operation

        return print_operation(self)


@dataclass(frozen=True)
class Function:
    name: str                          # without the leading '@'
    args: tuple[Value, ...]
    body: tuple[Operation, ...]
    results: tuple[Value, ...]         # the operands of the terminating `return`
    loc: Location | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        for f in ("args", "body", "results"):
            object.__setattr__(self, f, tuple(getattr(self, f)))

    @property
    def arg_types(self) -> tuple[TensorType, ...]:
        return tuple(v.type for v in self.args)

    @property
    def result_types(self) -> tuple[TensorType, ...]:
        return tuple(v.type for v in self.results)

    def users(self, value: Value) -> list[Operation]:
        """The ops that take ``value`` as an operand, in program order."""
        return [op for op in self.body if value in op.operands]

    def defining_op(self, value: Value) -> Operation | None:
        """The op whose result is ``value``; None for an argument."""
        for op in self.body:
            if op.result == value:
                return op
        return None

    def __str__(self) -> str:
        from hal_core.ir.printer import print_function

        return print_function(self)


@dataclass(frozen=True)
class Module:
    functions: tuple[Function, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "functions", tuple(self.functions))

    def __iter__(self) -> Iterator[Function]:
        return iter(self.functions)

    def __getitem__(self, name: str) -> Function:
        for f in self.functions:
            if f.name == name:
                return f
        known = ", ".join(f"@{f.name}" for f in self.functions) or "none"
        raise UsageError(f"no function @{name} in the module; it has: {known}")

    def __contains__(self, name: object) -> bool:
        return any(f.name == name for f in self.functions)

    def __str__(self) -> str:
        from hal_core.ir.printer import print_module

        return print_module(self)
