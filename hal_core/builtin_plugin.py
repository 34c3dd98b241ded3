"""The core's own plugin: the text IR importer, always present."""

from hal_core.descriptors import ImporterInfo
from hal_core.hookspecs import hookimpl

HAL_PLUGIN_API_VERSION = "1.0"


@hookimpl
def hal_register_importers() -> list[ImporterInfo]:
    return [
        ImporterInfo(
            name="text",
            description="hal tensor IR in MLIR-style text (func.func @main(...) {...})",
            factory="hal_core.ir.importer:import_text",
            extensions=(".mlir", ".hal", ".txt"),
        )
    ]
