"""Registers the vmvx target backend and the vmvx-bytecode loader (light: no numpy here)."""

from __future__ import annotations

from hal_core.descriptors import LoaderInfo, TargetInfo
from hal_core.hookspecs import hookimpl

HAL_PLUGIN_API_VERSION = "1.0"


@hookimpl
def hal_register_targets() -> list[TargetInfo]:
    return [TargetInfo(name="vmvx",
                       description="portable bytecode run by numpy microkernels (reference)",
                       factory="hal_vmvx.target:create_target",
                       formats=("vmvx-bytecode",), drivers=("local-sync", "local-task"))]


@hookimpl
def hal_register_executable_loaders() -> list[LoaderInfo]:
    return [LoaderInfo(format="vmvx-bytecode",
                       description="interprets vmvx bytecode with numpy microkernels",
                       factory="hal_vmvx.loader:create_loader")]
