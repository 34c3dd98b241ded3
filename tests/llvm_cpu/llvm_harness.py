"""Helpers for the llvm-cpu tests: compile kernel IR with the llvm-cpu target and run it through
its loader with several tilings of the workgroups (as the local drivers split them)."""

from __future__ import annotations

import numpy as np
from hal_llvm_cpu.loader import LlvmObjectLoader
from hal_llvm_cpu.target import LlvmCpuTarget

from hal_core.compiler import kernel_ir as K
from hal_core.compiler.target import TargetOptions

TILINGS = ("whole", "split", "each")


def operand(binding: int, shape, dtype: str) -> K.KernelOperand:
    return K.KernelOperand(binding, tuple(shape), dtype)


def ident(op: K.KernelOperand) -> K.MappedOperand:
    return K.MappedOperand(op, K.IndexingMap.identity(len(op.shape)))


def compile_one(kernel, **options):
    variant = LlvmCpuTarget().compile(K.KernelExecutable("t", (kernel,)),
                                      TargetOptions(options=options))
    return variant, LlvmObjectLoader(variant.format).load(variant.payload, variant.entry_points)


def run(kernel, inputs: dict[int, np.ndarray], outputs: dict[int, tuple], tiling: str = "whole",
        **options):
    """Run ``kernel`` with each binding its own buffer; return the ``outputs`` arrays.

    Output buffers start as garbage (0xAB), so every element must be written. ``options``:
    target options (``{"target-cpu": "haswell"}`` for 256-bit vectors).
    """
    variant, exe = compile_one(kernel, **options)
    n = 1 + max(list(inputs) + list(outputs))
    bufs = [np.zeros(64, np.uint8) for _ in range(n)]
    for b, a in inputs.items():
        bufs[b] = np.frombuffer(np.ascontiguousarray(a).tobytes(), np.uint8).copy()
    for b, (shape, dt) in outputs.items():
        size = int(np.prod(shape, dtype=np.int64)) * np.dtype(dt).itemsize
        bufs[b] = np.full(size, 0xAB, np.uint8)
    count = variant.entry_points[0].workgroup_count[0]
    if tiling == "whole":
        exe.run(0, (count, 1, 1), 0, count, bufs, ())
    elif tiling == "split":
        mid = count // 2
        exe.run(0, (count, 1, 1), mid, count, bufs, ())
        exe.run(0, (count, 1, 1), 0, mid, bufs, ())
    else:
        for w in range(count):
            exe.run(0, (count, 1, 1), w, w + 1, bufs, ())
    return {b: np.frombuffer(bufs[b].tobytes(), dt).reshape(shape)
            for b, (shape, dt) in outputs.items()}
