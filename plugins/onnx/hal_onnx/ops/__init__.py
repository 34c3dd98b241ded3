"""ONNX op -> tensor IR converters, one function per op type, registered into ``CONVERTERS``.

A converter gets the import context, the node's inputs (a builder ``Tensor``, a numpy array
known at import time, or None for an omitted optional input) and its attributes, and returns
its outputs. Attributes that became inputs in later opsets (Reshape's shape, Slice's starts,
ReduceSum's axes, Clip's bounds, ...) are read from either place. Values that decide shapes
must be known at import time (``ctx.const``), since the IR's shapes are static.
"""

from __future__ import annotations

from hal_onnx.ops import elementwise, nn, reductions, shapes, extra, losses, attention, index, quant  # noqa: F401  (each registers its ops)
from hal_onnx.ops.common import CONVERTERS


def supported_ops() -> list[str]:
    return sorted(CONVERTERS)


__all__ = ["CONVERTERS", "supported_ops"]
