"""Hand-built modules for the runtime tests: kernel IR -> vmvx variants -> model objects.

They do not depend on the compiler: each kernel is written in kernel IR and compiled by the
vmvx target backend, and the host program is written out as model objects.
"""

from __future__ import annotations

from hal_core.compiler import kernel_ir as K
from hal_core.compiler.target import TargetOptions
from hal_core.module.model import (
    Barrier,
    BufferRef,
    Constant,
    Copy,
    Dispatch,
    Executable,
    ExecutionModel,
    Fill,
    Function,
    Module,
    Slot,
    TensorType,
    Variant,
)

F32 = "float32"


def ident(binding: int, shape: tuple[int, ...], dtype: str = F32) -> K.MappedOperand:
    op = K.KernelOperand(binding, tuple(shape), dtype)
    return K.MappedOperand(op, K.IndexingMap.identity(len(shape)))


def binary_kernel(name: str, opcode: str, shape: tuple[int, ...], dtype: str = F32,
                  scale: float | None = None) -> K.GenericKernel:
    """out(binding 2) = in0(binding 0) <opcode> in1(binding 1) [* scale applied to in1]."""
    body: list[K.ScalarOp] = []
    rhs: K.ValueRef = K.Input(1)
    if scale is not None:
        body.append(K.ScalarOp("mul", (K.Input(1), K.Const(scale, dtype)), dtype))
        rhs = K.Result(0)
    body.append(K.ScalarOp(opcode, (K.Input(0), rhs), dtype))
    return K.GenericKernel(name, tuple(shape), ("parallel",) * len(shape),
                           (ident(0, shape, dtype), ident(1, shape, dtype)),
                           (ident(2, shape, dtype),), tuple(body), (K.Result(len(body) - 1),))


def vmvx_variant(name: str, *kernels) -> Variant:
    from hal_vmvx.target import VmvxTarget

    return VmvxTarget().compile(K.KernelExecutable(name, tuple(kernels)), TargetOptions())


def ref(slot: Slot, index: int, nbytes: int, offset: int = 0) -> BufferRef:
    return BufferRef(slot, index, offset, nbytes)


def add_module(n: int = 4, dtype: str = F32, *, scale: float | None = None,
               model: ExecutionModel = ExecutionModel.ASYNC, name: str = "add") -> Module:
    """``main(a, b) = a + b`` (or ``a + b*scale``) over ``n`` elements, one dispatch."""
    t = TensorType((n,), dtype)
    size = t.byte_size
    variant = vmvx_variant("add_exe", binary_kernel("add", "add", (n,), dtype, scale))
    main = Function("main", (t, t), (t,), (
        Dispatch(0, 0, (ref(Slot.INPUT, 0, size), ref(Slot.INPUT, 1, size),
                        ref(Slot.OUTPUT, 0, size))),))
    return Module(name, (main,), (Executable("add_exe", (variant,)),), execution_model=model)


def matmul_module(m: int, k: int, n: int, *, model: ExecutionModel = ExecutionModel.ASYNC
                  ) -> Module:
    a, b, c = TensorType((m, k), F32), TensorType((k, n), F32), TensorType((m, n), F32)
    kernel = K.MatmulKernel("matmul", K.KernelOperand(0, (m, k), F32),
                            K.KernelOperand(1, (k, n), F32), K.KernelOperand(2, (m, n), F32))
    variant = vmvx_variant("mm_exe", kernel)
    main = Function("main", (a, b), (c,), (
        Dispatch(0, 0, (ref(Slot.INPUT, 0, a.byte_size), ref(Slot.INPUT, 1, b.byte_size),
                        ref(Slot.OUTPUT, 0, c.byte_size))),))
    return Module("matmul", (main,), (Executable("mm_exe", (variant,)),), execution_model=model)


def chain_module(model: ExecutionModel = ExecutionModel.ASYNC) -> Module:
    """Two functions exercising constants, the transient arena, copy, fill and barriers.

    ``main(x: 2x3xf32) -> (x + c) * x, x + c``   with ``c`` a module constant;
    ``zeros_like_copy(x: 6xf32) -> (copy of x, 6 zeros)`` via copy and fill.
    """
    import numpy as np

    shape = (2, 3)
    t = TensorType(shape, F32)
    size = t.byte_size
    const = np.arange(6, dtype=np.float32).reshape(shape) * 10
    exe = vmvx_variant("ew", binary_kernel("add", "add", shape), binary_kernel("mul", "mul", shape))
    main = Function("main", (t,), (t, t), (
        # tmp(arena @0) = x + c ; out0 = tmp * x ; out1 = copy of tmp
        Dispatch(0, 0, (ref(Slot.INPUT, 0, size), ref(Slot.CONSTANT, 0, size),
                        ref(Slot.TRANSIENT, 0, size))),
        Barrier(),
        Dispatch(0, 1, (ref(Slot.TRANSIENT, 0, size), ref(Slot.INPUT, 0, size),
                        ref(Slot.OUTPUT, 0, size))),
        Copy(ref(Slot.TRANSIENT, 0, size), ref(Slot.OUTPUT, 1, size)),
    ), transient_size=64)
    t6 = TensorType((6,), F32)
    other = Function("copy_fill", (t6,), (t6, t6), (
        Copy(ref(Slot.INPUT, 0, 24), ref(Slot.OUTPUT, 0, 24)),
        Fill(ref(Slot.OUTPUT, 1, 24), b"\x00\x00\x80\x3f"),  # 1.0f
    ))
    return Module("chain", (main, other), (Executable("ew", (exe,)),),
                  (Constant("c", const.tobytes()),), execution_model=model)
