"""Helpers for the vmvx tests: build operands, compile one kernel, run it with several tilings."""

from __future__ import annotations

import numpy as np
from hal_vmvx.loader import VmvxLoader
from hal_vmvx.target import VmvxTarget

from hal_core.compiler import kernel_ir as K
from hal_core.compiler.target import TargetOptions

TILINGS = ("whole", "split", "each", "more")


def operand(binding: int, shape, dtype: str) -> K.KernelOperand:
    return K.KernelOperand(binding, tuple(shape), dtype)


def ident(op: K.KernelOperand) -> K.MappedOperand:
    return K.MappedOperand(op, K.IndexingMap.identity(len(op.shape)))


def compile_one(kernel):
    variant = VmvxTarget().compile(K.KernelExecutable("t", (kernel,)), TargetOptions())
    return variant, VmvxLoader().load(variant.payload, ())


def run(kernel, inputs: dict[int, np.ndarray], outputs: dict[int, tuple], tiling: str = "whole"):
    """Run ``kernel`` with bindings holding ``inputs``; return the arrays of ``outputs``.

    ``outputs`` maps binding -> (shape, dtype). Every binding is its own uint8 buffer.
    """
    variant, exe = compile_one(kernel)
    n = 1 + max(list(inputs) + list(outputs))
    bufs = [np.zeros(0, np.uint8) for _ in range(n)]
    for b, a in inputs.items():
        bufs[b] = np.frombuffer(np.ascontiguousarray(a).tobytes(), np.uint8).copy()
    for b, (shape, dt) in outputs.items():
        size = int(np.prod(shape, dtype=np.int64)) * np.dtype(dt).itemsize
        bufs[b] = np.full(size, 0xAB, np.uint8)  # garbage: every element must be written
    count = variant.entry_points[0].workgroup_count[0]
    if tiling == "whole":
        exe.run(0, (count, 1, 1), 0, count, bufs, ())
    elif tiling == "split":
        mid = count // 2
        exe.run(0, (count, 1, 1), mid, count, bufs, ())
        exe.run(0, (count, 1, 1), 0, mid, bufs, ())
    elif tiling == "each":
        for w in range(count):
            exe.run(0, (count, 1, 1), w, w + 1, bufs, ())
    else:  # a count the compiler did not choose: run() must honour it
        c = 2 * count + 1
        for w in range(0, c, 2):
            exe.run(0, (c, 1, 1), w, min(w + 2, c), bufs, ())
    return {b: np.frombuffer(bufs[b].tobytes(), dt).reshape(shape)
            for b, (shape, dt) in outputs.items()}


def unary_kernel(opcode: str, shape, dtype: str, out_dtype: str | None = None):
    x = operand(0, shape, dtype)
    y = operand(1, shape, out_dtype or dtype)
    return K.GenericKernel(opcode, tuple(shape), ("parallel",) * len(shape), (ident(x),),
                           (ident(y),), (K.ScalarOp(opcode, (K.Input(0),), y.dtype),),
                           (K.Result(0),))
