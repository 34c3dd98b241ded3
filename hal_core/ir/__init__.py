"""The tensor IR of hal: typed, static-shaped programs in SSA form.

* data: :mod:`.types` (TensorType, element types), :mod:`.module` (Value, Operation,
  Function, Module), :mod:`.opdefs` (the op registry and type rules);
"""

from hal_core.ir.module import Function, Location, Module, Operation, Value
from hal_core.ir.opdefs import OPS, AttrSpec, OpDef, get_opdef
from hal_core.ir.types import ELEMENT_TYPES, TensorType, element_type, numpy_dtype_name

__all__ = [
    "ELEMENT_TYPES", "OPS", "AttrSpec", "Function", "Location", "Module", "OpDef", "Operation",
    "TensorType", "Value", "element_type", "get_opdef", "numpy_dtype_name",
]
