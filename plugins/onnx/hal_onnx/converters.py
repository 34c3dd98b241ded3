"""The converter table (kept here for imports; the converters live in :mod:`hal_onnx.ops`)."""

from __future__ import annotations

from hal_onnx.ops import CONVERTERS, supported_ops

__all__ = ["CONVERTERS", "supported_ops"]
