"""The example target: kernel IR -> example-program, and the program format's checks."""

from __future__ import annotations

import json

import numpy as np
import pytest

import hal_core
from hal_core.compiler import kernel_ir as K
from hal_core.compiler.target import TargetOptions
from hal_core.errors import (
    CompileError,
    IncompatibleModuleError,
    ModuleFormatError,
    UnsupportedKernelError,
)
from hal_example import FORMAT
from hal_example.program import decode
from hal_example.lowering import access, lower
from hal_example.named import matmul_as_generic
from hal_example.target import create_target


def op(binding, shape, dtype="float32", offset=0):
    return K.KernelOperand(binding, tuple(shape), dtype, offset)


def test_access_folds_transpose_broadcast_and_reversed_slices():
    # a (3, 4) float32 operand read transposed over a (4, 3) space
    t = K.MappedOperand(op(0, (3, 4)), K.IndexingMap.of_dims(2, (1, 0)))
    assert access(t).strides == (4, 16) and access(t).offset == 0
    # broadcast along dim 0, a size-1 leading operand dim
    b = K.MappedOperand(op(1, (1, 5), offset=64), K.IndexingMap.of_dims(2, (None, 1)))
    assert access(b).strides == (0, 4) and access(b).offset == 64
    # x[::-2] of a length-8 int16 vector: start 7, step -2
    r = K.MappedOperand(op(2, (8,), "int16"), K.IndexingMap(1, (K.AffineExpr((-2,), 7),)))
    assert access(r).strides == (-4,) and access(r).offset == 14


def test_matmul_becomes_a_valid_generic_reduction():
    mm = K.MatmulKernel("mm", op(0, (2, 3, 4)), op(1, (5, 4)), op(2, (2, 3, 5)),
                        transpose_b=True)
    g = matmul_as_generic(mm)
    K.validate(g)
    assert g.iteration_space == (2, 3, 5, 4) and g.iterator_types[-1] == "reduction"
    prog = lower(g)
    assert prog.reduce == (3,) and prog.combiners == ("sum",)


def test_softmax_is_three_stages_through_scratch_memory():
    soft = K.SoftmaxKernel("sm", op(0, (4, 6), "float16"), op(1, (4, 6), "float16"), axis=1)
    variant = create_target().compile(K.KernelExecutable("e", (soft,)), TargetOptions())
    (kernel,) = decode(variant.payload)
    assert len(kernel.stages) == 3 and kernel.tile_dim == 0
    assert kernel.scratch == (4 * 4, 4 * 4)  # row max and row sum of 4 rows, in float32
    assert [st.reduce for st in kernel.stages] == [(1,), (1,), ()]


def test_padded_conv_zeroes_a_scratch_copy_then_reduces_over_affine_windows():
    conv = K.Conv2dKernel("cv", op(0, (2, 4, 5, 5)), op(1, (6, 2, 3, 3)), op(2, (2, 6, 5, 5)),
                          padding=(1, 1, 1, 1), groups=2)
    variant = create_target().compile(K.KernelExecutable("e", (conv,)), TargetOptions())
    (kernel,) = decode(variant.payload)
    assert kernel.scratch == (2 * 4 * 7 * 7 * 4,)  # the zero-padded input
    assert kernel.tile_dim == 0  # only n means the same in all three stages
    assert [st.space for st in kernel.stages] == [(2, 4, 7, 7), (2, 4, 5, 5),
                                                   (2, 2, 3, 5, 5, 2, 3, 3)]


def test_named_kernels_without_a_lowering_are_declined():
    gather = K.GatherKernel("g", op(0, (5, 3)), op(1, (2,), "int32"), op(2, (2, 3)), axis=0)
    with pytest.raises(UnsupportedKernelError, match="cannot compile kernel 'g' .GatherKernel."):
        create_target().compile(K.KernelExecutable("e", (gather,)), TargetOptions())


def test_a_compiled_module_declares_float64_only_when_used():
    f64 = hal_core.compile(_add_module("float64"), target_backends=["example"])
    f32 = hal_core.compile(_add_module("float32"), target_backends=["example"])
    assert f64.executables[0].variants[0].features == ("example:float64",)
    assert f32.executables[0].variants[0].features == ()
    assert f32.executables[0].variants[0].format == FORMAT


def _add_module(dtype):
    from hal_core.ir import Builder

    b = Builder()
    with b.function("main", [("x", (4,), dtype)]) as f:
        f.ret(f.args[0] + 1.0)
    return b.module()


def test_payload_round_trips_and_corruption_is_a_module_format_error():
    f32 = hal_core.compile(_add_module("float32"), target_backends=["example"])
    payload = bytes(f32.executables[0].variants[0].payload)
    (kernel,) = decode(payload)
    assert kernel.stages[0].body.code and kernel.stages[0].outputs
    with pytest.raises(ModuleFormatError, match="not JSON"):
        decode(payload[:-5])
    doc = json.loads(payload)
    doc["kernels"][0]["stages"][0]["code"][0][0] = "launch_missiles"
    with pytest.raises(ModuleFormatError, match="known opcode"):
        decode(json.dumps(doc).encode())
    doc = json.loads(payload)
    doc["version"] = 99
    with pytest.raises(ModuleFormatError, match="version 99 is not supported"):
        decode(json.dumps(doc).encode())


def test_options_and_the_inline_model_are_refused():
    ir = _add_module("float32")
    with pytest.raises(CompileError, match="has no options"):
        hal_core.compile(ir, target_backends=["example"], target_options={"example": {"x": "1"}})
    with pytest.raises(CompileError, match="inline execution model"):
        hal_core.compile(ir, target_backends=["example"], execution_model="inline")


def test_a_dispatch_through_the_hal_objects(device):
    """What the runtime does for a call, by hand: upload, dispatch, download."""
    from hal_core.ir import Builder

    b = Builder()
    with b.function("main", [("x", (3, 4), "float32"), ("w", (4, 2), "float32")]) as f:
        x, w = f.args
        f.ret((x @ w).relu())
    module = hal_core.compile(b.module(), target_backends=["example"])
    (variant,) = module.executables[0].variants
    exe = device.executable_cache.prepare(variant.format, variant.payload, variant.entry_points)
    x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    w = np.linspace(-2, 3, 8, dtype=np.float32).reshape(4, 2)
    bx, bw, bo = (device.allocator.allocate_buffer(a.nbytes) for a in (x, w, np.empty((3, 2),
                                                                                    np.float32)))
    sem = device.create_semaphore()
    device.queue_write([], [(sem, 1)], x, bx)
    device.queue_write([], [(sem, 2)], w, bw)
    cb = device.create_command_buffer()
    with cb:
        ep = variant.entry_points[0]
        cb.dispatch(exe, 0, tuple(ep.workgroup_count), [bx, bw, bo])
    device.queue_execute([(sem, 2)], [(sem, 3)], [cb])
    out = np.empty((3, 2), np.float32)
    device.queue_read([(sem, 3)], [(sem, 4)], bo, 0, out)
    sem.wait(4, 10)
    np.testing.assert_allclose(out, np.maximum(x @ w, 0), rtol=1e-6)


def test_a_device_without_float64_refuses_float64_variants_saying_why():
    f64 = hal_core.compile(_add_module("float64"), target_backends=["example"])
    with pytest.raises(IncompatibleModuleError, match="example:float64"):
        hal_core.load_module(f64, device="example://?float64=0")


def test_declined_kernels_keep_another_targets_variant():
    from hal_core.ir import Builder

    from hal_core.ir import ops as O

    b = Builder()
    with b.function("main", [("x", (5, 3), "float32"), ("i", (2,), "int32")]) as f:
        x, i = f.args
        f.ret(O.gather(x, i, 0), x * 2.0)
    module = hal_core.compile(b.module(), target_backends=["example", "vmvx"])
    targets = [{v.target_backend for v in e.variants} for e in module.executables]
    assert {"vmvx"} in targets and {"example", "vmvx"} in targets
