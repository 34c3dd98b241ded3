"""The example target backend: kernel IR in, one ``example-program`` variant out.

Lowering a kernel is three steps, each one a thing a real accelerator backend does too:

1. Bring the kernel to a form the hardware runs. The example device runs loop nests
   (stages), so the named kernels are rewritten (:mod:`hal_example.named`): matmul as a
   GenericKernel with a reduction dim, softmax as three stages passing row maxima and sums
   through dispatch scratch memory, conv2d as a reduction over affine windows of a zero-padded
   scratch copy, pooling likewise (with a count computed from the output coordinates for
   averages), argmax/argmin as a max then a first-index reduction. Gather, whose addresses
   come from data, is declined with UnsupportedKernelError, and hal keeps another target's
   variant for it when the module is compiled for several targets.
2. Fold each operand's affine indexing map and its row-major layout into an access descriptor
   (a byte offset and a byte stride per iteration dim), which is what the device's address
   generator consumes (:mod:`hal_example.lowering`).
3. Choose the tiling: one parallel dim is split into workgroups small enough that a
   workgroup's temporaries stay bounded.
"""

from __future__ import annotations

import logging

from hal_core.compiler import kernel_ir as K
from hal_core.compiler.target import TargetBackend, TargetOptions
from hal_core.errors import CompileError, UnsupportedKernelError
from hal_core.module.model import ExecutionModel, Variant, VariantEntryPoint
from hal_example import FORMAT, NAME
from hal_example.lowering import lower, tiled
from hal_example.named import (
    argreduce_program,
    conv2d_program,
    matmul_as_generic,
    pool2d_program,
    softmax_program,
)
from hal_example.program import ProgramKernel, encode

log = logging.getLogger(__name__)

#: The device feature a variant needs when it computes in float64.
FLOAT64_FEATURE = f"{NAME}:float64"


class ExampleTarget(TargetBackend):
    name = NAME

    def compile(self, executable: K.KernelExecutable, options: TargetOptions) -> Variant:
        if options.options:
            raise CompileError(f"target {NAME} has no options, got "
                               f"{', '.join(sorted(options.options))}; remove them")
        if options.execution_model is ExecutionModel.INLINE:
            raise CompileError(f"target {NAME} produces executables for the {NAME} device's "
                               f"queue; the inline execution model runs kernels on the host "
                               f"CPU: compile with --execution-model=async")
        if not executable.kernels:
            raise CompileError(f"executable {executable.name!r} has no kernels to compile")
        lowered = [lower_kernel(k) for k in executable.kernels]
        uses_f64 = any(_uses_float64(k) for k in lowered)
        entry_points = tuple(
            VariantEntryPoint(name=k.name, workgroup_count=(p.workgroups, 1, 1),
                              binding_count=K.binding_count(k))
            for k, p in zip(executable.kernels, lowered))
        payload = encode(lowered)
        log.debug("%s: %s -> %d kernels, %d bytes", NAME, executable.name, len(lowered),
                  len(payload))
        return Variant(target_backend=NAME, format=FORMAT,
                       features=(FLOAT64_FEATURE,) if uses_f64 else (),
                       entry_points=entry_points, payload=payload)


def create_target() -> ExampleTarget:
    return ExampleTarget()


def lower_kernel(kernel: K.Kernel) -> ProgramKernel:
    """``kernel`` as a ProgramKernel, or UnsupportedKernelError."""
    K.validate(kernel)
    if isinstance(kernel, K.GenericKernel):
        return tiled(kernel.name, (lower(kernel),))
    if isinstance(kernel, K.MatmulKernel):
        generic = matmul_as_generic(kernel)
        K.validate(generic)
        return tiled(kernel.name, (lower(generic),))
    if isinstance(kernel, K.SoftmaxKernel) and kernel.input.dtype in K.FLOAT_DTYPES:
        return softmax_program(kernel)
    if isinstance(kernel, K.Conv2dKernel):
        return conv2d_program(kernel)
    if isinstance(kernel, K.Pool2dKernel):
        return pool2d_program(kernel)
    if isinstance(kernel, K.ArgReduceKernel):
        return argreduce_program(kernel)
    raise UnsupportedKernelError(
        f"target {NAME} cannot compile kernel {kernel.name!r} ({type(kernel).__name__}): the "
        f"{NAME} target has no lowering for it; compile for a second target too (e.g. "
        f"--target-backends={NAME},vmvx) so another device can run it")


def _uses_float64(k: ProgramKernel) -> bool:
    return any(any(a.dtype == "float64" for a in st.operands)
               or any(op[1] == "float64" for b in (st.body, st.final) if b for op in b.code)
               for st in k.stages)
