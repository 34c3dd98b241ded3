"""Registers the vulkan driver. Imports nothing heavy (no ``vulkan``, no numpy)."""

from hal_core.descriptors import DriverInfo
from hal_core.hookspecs import hookimpl

HAL_PLUGIN_API_VERSION = "1.0"


@hookimpl
def hal_register_drivers() -> list[DriverInfo]:
    return [
        DriverInfo(
            name="vulkan",
            description="Vulkan compute (SPIR-V executables) through the vulkan package",
            factory="hal_vulkan.driver.device:create_driver",
            probe="hal_vulkan.driver.instance:probe",
        )
    ]
