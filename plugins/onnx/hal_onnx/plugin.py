"""Registers the ONNX importer (light: neither onnx nor numpy is imported here)."""

from __future__ import annotations

from hal_core.descriptors import ImporterInfo
from hal_core.hookspecs import hookimpl

HAL_PLUGIN_API_VERSION = "1.2"  # ImporterInfo.tools


@hookimpl
def hal_register_importers() -> list[ImporterInfo]:
    return [ImporterInfo(name="onnx",
                         description="ONNX models, opsets 7 to 23 (option: input-shape)",
                         factory="hal_onnx.importer:import_onnx",
                         extensions=(".onnx",),
                         tools="hal_onnx.zoo:tools")]
