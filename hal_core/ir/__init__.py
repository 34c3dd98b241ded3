"""The tensor IR of hal: typed, static-shaped programs in SSA form.

* data: :mod:`.types` (TensorType, element types), :mod:`.module` (Value, Operation, Function,
  Module), :mod:`.opdefs` (the op registry, attribute specs and type rules);
* text: :func:`parse` / :func:`parse_file` (grammar in :mod:`.parser`) and :func:`print_module`
  (canonical text; ``str(module)`` is the same);
* Python: :class:`Builder` (:mod:`.builder`) and the free functions of :mod:`.ops`;
* checking: :func:`verify_module`, :func:`verify_function`;
* numbers: :func:`evaluate` / :func:`evaluate_op` in :mod:`.reference` (imported on use: numpy).
"""

from __future__ import annotations

from typing import Any

from hal_core.ir import ops
from hal_core.ir.builder import Builder, FunctionBuilder, Tensor
from hal_core.ir.module import Function, Location, Module, Operation, Value
from hal_core.ir.opdefs import OPS, AttrSpec, OpDef, get_opdef, infer_type, normalize_attrs
from hal_core.ir.parser import parse, parse_file
from hal_core.ir.printer import print_function, print_module, print_operation
from hal_core.ir.types import ELEMENT_TYPES, TensorType, element_type, numpy_dtype_name
from hal_core.ir.verifier import verify_function, verify_module, verify_operation


def evaluate(function: Function, *inputs: Any) -> list[Any]:
    """Run ``function`` with the numpy reference evaluator (see :mod:`.reference`)."""
    from hal_core.ir.reference import evaluate as _evaluate

    return _evaluate(function, *inputs)


def evaluate_op(op: Operation, operands: list[Any]) -> Any:
    """Compute one op on numpy operands (constant folding); see :mod:`.reference`."""
    from hal_core.ir.reference import evaluate_op as _evaluate_op

    return _evaluate_op(op, operands)


__all__ = [
    "ELEMENT_TYPES", "OPS", "AttrSpec", "Builder", "Function", "FunctionBuilder", "Location",
    "Module", "OpDef", "Operation", "Tensor", "TensorType", "Value", "element_type", "evaluate",
    "evaluate_op",
    "get_opdef", "infer_type", "normalize_attrs", "numpy_dtype_name", "ops", "parse",
    "parse_file", "print_function", "print_module", "print_operation", "verify_function",
    "verify_module", "verify_operation",
]
