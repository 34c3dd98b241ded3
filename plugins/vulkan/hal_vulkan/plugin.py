"""Registers the vulkan driver and the vulkan-spirv target backend (light: no ``vulkan`` or
numpy imports here)."""

from __future__ import annotations

from hal_core.descriptors import DriverInfo, TargetInfo
from hal_core.hookspecs import hookimpl

HAL_PLUGIN_API_VERSION = "1.1"


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


@hookimpl
def hal_register_targets() -> list[TargetInfo]:
    return [TargetInfo(name="vulkan-spirv",
                       description="SPIR-V compute shaders for a Vulkan target environment",
                       factory="hal_vulkan.target:create_target",
                       formats=("spirv",), drivers=("vulkan",))]
