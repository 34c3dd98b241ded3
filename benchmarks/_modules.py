"""Modules for the runtime benchmarks: compiled by ``hal_core.compile`` when the compiler is
installed, else built by hand from kernel IR (recorded in the results as ``module_source``).

The hand-built forms are what the compiler produces for these programs: one vmvx dispatch
over the whole tensor, inputs and output bound directly.
"""

from __future__ import annotations

from typing import Any

from hal_core.compiler import kernel_ir as K
from hal_core.compiler.target import TargetOptions
from hal_core.module.model import (
    BufferRef,
    Dispatch,
    Executable,
    ExecutionModel,
    Function,
    Module,
    Slot,
    TensorType,
)

F32 = "float32"


def compiled(ir_text: str, execution_model: str) -> Module | None:
    """``hal_core.compile(ir_text)`` for vmvx, or None when the compiler is not there yet."""
    try:
        import hal_core

        compile_fn = hal_core.compile
    except (AttributeError, ImportError):
        return None
    return compile_fn(ir_text, target_backends="vmvx", execution_model=execution_model)


def _ident(binding: int, shape: tuple[int, ...]) -> K.MappedOperand:
    return K.MappedOperand(K.KernelOperand(binding, shape, F32), K.IndexingMap.identity(len(shape)))


def _module(name: str, kernel: Any, ins: tuple[TensorType, ...], out: TensorType,
            execution_model: str) -> Module:
    from hal_vmvx.target import VmvxTarget

    variant = VmvxTarget().compile(K.KernelExecutable(name, (kernel,)), TargetOptions())
    refs = [BufferRef(Slot.INPUT, i, 0, t.byte_size) for i, t in enumerate(ins)]
    refs.append(BufferRef(Slot.OUTPUT, 0, 0, out.byte_size))
    main = Function("main", ins, (out,), (Dispatch(0, 0, tuple(refs)),))
    model = ExecutionModel.INLINE if execution_model == "inline" else ExecutionModel.ASYNC
    return Module(name, (main,), (Executable(name, (variant,)),), execution_model=model)


def axpy_by_hand(n: int, scale: float | None, execution_model: str = "async") -> Module:
    """``a + b`` (scale None) or ``a + b * scale`` over ``n`` float32 elements."""
    shape = (n,)
    body = []
    rhs: Any = K.Input(1)
    if scale is not None:
        body.append(K.ScalarOp("mul", (K.Input(1), K.Const(scale, F32)), F32))
        rhs = K.Result(0)
    body.append(K.ScalarOp("add", (K.Input(0), rhs), F32))
    kernel = K.GenericKernel("axpy", shape, ("parallel",), (_ident(0, shape), _ident(1, shape)),
                             (_ident(2, shape),), tuple(body), (K.Result(len(body) - 1),))
    t = TensorType(shape, F32)
    return _module("axpy", kernel, (t, t), t, execution_model)


def matmul_by_hand(m: int, k: int, n: int, execution_model: str = "async") -> Module:
    kernel = K.MatmulKernel("matmul", K.KernelOperand(0, (m, k), F32),
                            K.KernelOperand(1, (k, n), F32), K.KernelOperand(2, (m, n), F32))
    return _module("matmul", kernel, (TensorType((m, k), F32), TensorType((k, n), F32)),
                   TensorType((m, n), F32), execution_model)


def build(ir_text: str, by_hand: Any, execution_model: str = "async") -> tuple[Module, str]:
    """(module, how it was made)."""
    module = compiled(ir_text, execution_model)
    if module is not None:
        return module, "hal_core.compile (vmvx)"
    return by_hand(execution_model), "hand-built kernel IR (vmvx target)"
