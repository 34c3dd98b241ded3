"""Registers the llvm-cpu target (and its deprecated IREE name) and the llvm-object loaders.

Light: no llvmlite or numpy here.
"""

from __future__ import annotations

from hal_core.descriptors import LoaderInfo, TargetInfo
from hal_core.hookspecs import hookimpl

HAL_PLUGIN_API_VERSION = "1.0"

_FORMATS = ("llvm-object-x86_64", "llvm-object-aarch64")


@hookimpl
def hal_register_targets() -> list[TargetInfo]:
    return [
        TargetInfo(name="llvm-cpu",
                   description="native code: LLVM IR compiled by llvmlite (host CPU by "
                               "default, cross triples too)",
                   factory="hal_llvm_cpu.target:create_target", formats=_FORMATS,
                   drivers=("local-sync", "local-task")),
        TargetInfo(name="dylib-llvm-aot",
                   description="deprecated IREE name of llvm-cpu; use llvm-cpu",
                   factory="hal_llvm_cpu.target:create_deprecated_target", formats=_FORMATS,
                   drivers=("local-sync", "local-task")),
    ]


@hookimpl
def hal_register_executable_loaders() -> list[LoaderInfo]:
    return [
        LoaderInfo(format="llvm-object-x86_64",
                   description="links x86_64 object code in-process with LLJIT",
                   factory="hal_llvm_cpu.loader:create_loader_x86_64",
                   probe="hal_llvm_cpu.loader:probe_x86_64"),
        LoaderInfo(format="llvm-object-aarch64",
                   description="links aarch64 object code in-process with LLJIT",
                   factory="hal_llvm_cpu.loader:create_loader_aarch64",
                   probe="hal_llvm_cpu.loader:probe_aarch64"),
    ]
