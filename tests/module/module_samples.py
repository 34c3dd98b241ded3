"""Sample modules shared by the module-format tests."""

from __future__ import annotations

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
    VariantEntryPoint,
)


def make_module(execution_model: ExecutionModel = ExecutionModel.ASYNC) -> Module:
    """A module that touches every part of the format: several functions, executables with
    several variants, constants of odd and zero length, every host op kind."""
    eps = (VariantEntryPoint("add", (4, 1, 1), (16, 1, 1), binding_count=3, constant_count=1),
           VariantEntryPoint("neg", (1, 2, 3), binding_count=2))
    add = Executable("add_dispatch", (
        Variant("vmvx", "vmvx-bytecode", (), eps, bytes(range(37))),
        Variant("llvm-cpu", "llvm-object-x86_64", ("avx2", "fma"), eps, b"\x7fELF" * 50),
    ))
    mm = Executable("matmul", (
        Variant("vmvx", "vmvx-bytecode", (), (VariantEntryPoint("mm", (2, 2, 1), (8, 8, 1), 3,
                                                                   2),), b""),
    ))
    f32x16 = TensorType((4, 4), "float32")

    def ref(slot: Slot, index: int, offset: int, length: int) -> BufferRef:
        return BufferRef(slot, index, offset, length)

    main = Function(
        "main", (f32x16, f32x16), (f32x16,),
        (
            Fill(ref(Slot.TRANSIENT, 0, 0, 64), b"\x00\x00\x80\x3f"),
            Dispatch(0, 0, (ref(Slot.INPUT, 0, 0, 64), ref(Slot.INPUT, 1, 0, 64),
                            ref(Slot.TRANSIENT, 0, 64, 64)), (-7,)),
            Barrier(),
            Dispatch(1, 0, (ref(Slot.TRANSIENT, 0, 64, 64), ref(Slot.CONSTANT, 0, 0, 64),
                            ref(Slot.OUTPUT, 0, 0, 64)), (2**32 - 1, 0)),
            Copy(ref(Slot.CONSTANT, 3, 0, 16), ref(Slot.OUTPUT, 0, 48, 16)),
        ),
        transient_size=128,
    )
    scale = Function(
        "scale", (TensorType((0, 3), "int8"), TensorType((5,), "bool")),
        (TensorType((5,), "bool"), TensorType((), "float64")),
        (
            Dispatch(0, 1, (ref(Slot.INPUT, 1, 0, 5), ref(Slot.OUTPUT, 0, 0, 5))),
            Fill(ref(Slot.OUTPUT, 1, 0, 8), b"\xff\xee"),
            Fill(ref(Slot.OUTPUT, 0, 0, 0), b"\x01"),
        ),
    )
    empty = Function("nothing", (), (), ())
    return Module(
        name="sample",
        functions=(main, scale, empty),
        executables=(add, mm),
        constants=(Constant("weights", bytes(range(100))), Constant("empty", b""),
                   Constant("odd", b"1234567"), Constant("bias", bytes(1000))),
        execution_model=execution_model,
        metadata={"compiler": "hal 0.1", "source": "sample.mlir"},
    )
