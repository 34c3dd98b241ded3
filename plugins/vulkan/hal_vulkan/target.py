"""The vulkan-spirv target backend: kernel IR -> one SPIR-V module, one entry point per kernel.

Options: ``--vulkan-target-triple=NAME`` (see :data:`hal_vulkan.target_env.TRIPLES`) and
``--vulkan-target-env='#vk.target_env<...>'`` (overrides the triple). The variant's features say
what codegen relied on (contract 1): the Vulkan version, extensions, device features for 64-bit
types and the limits the launch shapes and shared memory assume.
"""

from __future__ import annotations

import logging

from hal_core.compiler.kernel_ir import (
    GenericKernel, KernelExecutable, binding_count, kernel_operands, validate,
)
from hal_core.compiler.target import TargetBackend, TargetOptions
from hal_core.errors import CompileError
from hal_core.module.model import Variant, VariantEntryPoint
from hal_vulkan.errors import UnsupportedKernelError
from hal_vulkan.target_env import TargetEnv, target_env_from_options

log = logging.getLogger(__name__)

FORMAT = "spirv"
OPTIONS = ("target-triple", "target-env")
_CAP_FEATURES = {11: "shaderInt64", 10: "shaderFloat64"}
FLOAT_CONTROLS = "VK_KHR_shader_float_controls"


class VulkanSpirvTarget(TargetBackend):
    name = "vulkan-spirv"

    def compile(self, executable: KernelExecutable, options: TargetOptions) -> Variant:
        unknown = sorted(set(options.options) - set(OPTIONS))
        if unknown:
            raise CompileError(f"target vulkan-spirv has no option(s) {', '.join(unknown)}; known: "
                               + ", ".join(f"--vulkan-{o}" for o in OPTIONS))
        if not executable.kernels:
            raise CompileError(f"executable {executable.name!r} has no kernels to compile")
        env = target_env_from_options(options.get("target-triple"), options.get("target-env"))
        return compile_executable(executable, env)


def compile_executable(executable: KernelExecutable, env: TargetEnv) -> Variant:
    from hal_vulkan.spirv.builder import ModuleBuilder
    from hal_vulkan.spirv.generic import lower_generic
    from hal_vulkan.spirv.named import lower_named
    from hal_vulkan.spirv.shader import Shader

    module = ModuleBuilder(env.spirv_version)
    float_controls = env.version >= (1, 2) or FLOAT_CONTROLS in env.extensions
    entry_points, plans = [], []
    cpu = env.is_cpu
    for k in executable.kernels:
        validate(k)
        _check_buffer_range(k, env)
        n = binding_count(k)

        # fast_math: the GEMM tiles skip IEEE special-value preservation (their sums need no
        # sign of zero, and it can cost speed).
        def factory(local_size, fast_math=False, k=k, n=n):
            return Shader(module, n, local_size, k.name,
                          preserve_float_specials=float_controls and not fast_math)
        try:
            plan = (lower_generic(k, factory, env.limit) if isinstance(k, GenericKernel)
                    else lower_named(k, factory, env.limit, cpu))
        except UnsupportedKernelError as e:
            raise UnsupportedKernelError(f"vulkan-spirv cannot compile kernel {k.name!r}: {e}; "
                                         "another target (vmvx, llvm-cpu) can") from None
        _check_features(k, module, env)
        plans.append(plan)
        entry_points.append(VariantEntryPoint(
            name=k.name, workgroup_count=plan.grid, workgroup_size=(plan.local_size, 1, 1),
            binding_count=n))
    payload = module.assemble()
    log.debug("vulkan-spirv: %s -> %d entry points, %d bytes", executable.name,
              len(entry_points), len(payload))
    return Variant(target_backend="vulkan-spirv", format=FORMAT,
                   features=_requirements(env, module, plans, executable),
                   entry_points=tuple(entry_points), payload=payload)


def _check_buffer_range(k, env: TargetEnv) -> None:
    limit = env.limit("maxStorageBufferRange")
    for op, _ in kernel_operands(k):
        if op.byte_offset + op.byte_size > limit:
            raise UnsupportedKernelError(
                f"vulkan-spirv cannot compile kernel {k.name!r}: it reaches byte "
                f"{op.byte_offset + op.byte_size} of binding {op.binding}, past the target "
                f"environment's maxStorageBufferRange ({limit}); another target (vmvx, llvm-cpu) "
                "can, or raise the limit with --vulkan-target-env if the device allows it")


def _check_features(k, module, env: TargetEnv) -> None:
    for cap, feature in _CAP_FEATURES.items():
        if cap in module.capabilities and not env.has(feature):
            raise UnsupportedKernelError(
                f"vulkan-spirv cannot compile kernel {k.name!r}: it needs "
                f"{'64-bit integers' if cap == 11 else '64-bit floats'} and the target environment "
                f"lacks {feature}; another target (vmvx, llvm-cpu) can, or use a target "
                "environment with it")


def _requirements(env: TargetEnv, module, plans, executable) -> tuple[str, ...]:
    reqs = [f"vulkan:api>={env.version[0]}.{env.version[1]}"]
    if env.spirv_version == (1, 4) and env.version < (1, 2):
        reqs.append("vulkan:ext:VK_KHR_spirv_1_4")
    if 4466 in module.capabilities and env.version < (1, 2):  # SignedZeroInfNanPreserve
        reqs.append(f"vulkan:ext:{FLOAT_CONTROLS}")
    reqs += [f"vulkan:feature:{f}" for c, f in sorted(_CAP_FEATURES.items())
             if c in module.capabilities]
    local = max(p.local_size for p in plans)
    reqs.append(f"vulkan:limit:maxComputeWorkGroupInvocations>={local}")
    reqs.append(f"vulkan:limit:maxComputeWorkGroupSize>={local}x1x1")
    grid = [max(p.grid[i] for p in plans) for i in range(3)]
    reqs.append(f"vulkan:limit:maxComputeWorkGroupCount>={grid[0]}x{grid[1]}x{grid[2]}")
    shared = max(p.shared_bytes for p in plans)
    if shared:
        reqs.append(f"vulkan:limit:maxComputeSharedMemorySize>={shared}")
    extent = max((op.byte_offset + op.byte_size for k in executable.kernels
                  for op, _ in kernel_operands(k)), default=0)
    reqs.append(f"vulkan:limit:maxStorageBufferRange>={extent}")
    return tuple(reqs)


def create_target() -> VulkanSpirvTarget:
    return VulkanSpirvTarget()
