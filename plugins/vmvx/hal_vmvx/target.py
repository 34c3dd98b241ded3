"""The vmvx target backend: kernel IR -> one ``vmvx-bytecode`` variant."""

from __future__ import annotations

import logging

from hal_core.compiler.kernel_ir import GenericKernel, KernelExecutable, binding_count, validate
from hal_core.compiler.target import TargetBackend, TargetOptions
from hal_core.errors import CompileError, OptionError
from hal_core.module.model import Variant, VariantEntryPoint
from hal_vmvx import bytecode

log = logging.getLogger(__name__)

FORMAT = "vmvx-bytecode"


class VmvxTarget(TargetBackend):
    name = "vmvx"

    def compile(self, executable: KernelExecutable, options: TargetOptions) -> Variant:
        unknown = sorted(set(options.options))
        if unknown:
            raise OptionError(f"target vmvx has no options, got {', '.join(unknown)}; remove "
                              "them from the vmvx flags")
        if not executable.kernels:
            raise CompileError(f"executable {executable.name!r} has no kernels to compile")
        from hal_vmvx.lowering import lower_generic
        from hal_vmvx.named import lower_named

        codes = []
        for k in executable.kernels:
            validate(k)
            codes.append(lower_generic(k) if isinstance(k, GenericKernel) else lower_named(k))
        payload = bytecode.encode(codes)
        entry_points = tuple(
            VariantEntryPoint(name=k.name, workgroup_count=(c.workgroup_count, 1, 1),
                              binding_count=binding_count(k))
            for k, c in zip(executable.kernels, codes))
        log.debug("vmvx: %s -> %d kernels, %d bytes", executable.name, len(codes), len(payload))
        return Variant(target_backend="vmvx", format=FORMAT, features=(),
                       entry_points=entry_points, payload=payload)


def create_target() -> VmvxTarget:
    return VmvxTarget()
