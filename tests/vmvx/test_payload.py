"""The vmvx-bytecode payload: structure, malformed payloads, bad bindings, registration."""

from __future__ import annotations

import numpy as np
import pytest
from hal_vmvx.loader import VmvxLoader
from hal_vmvx.target import VmvxTarget
from harness import compile_one, ident, operand
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hal_core.compiler import kernel_ir as K
from hal_core.compiler.target import TargetOptions
from hal_core.errors import (
    CompileError,
    HalError,
    HalRuntimeError,
    ModuleFormatError,
    OptionError,
)
from hal_core.hal.executable import EntryPoint


def _two_kernels() -> K.KernelExecutable:
    x, y = operand(0, (64, 8), "float32"), operand(1, (64, 8), "float32")
    add = K.GenericKernel("add1", (64, 8), ("parallel", "parallel"), (ident(x),), (ident(y),),
                          (K.ScalarOp("add", (K.Input(0), K.Const(1.0, "float32")), "float32"),),
                          (K.Result(0),))
    mm = K.MatmulKernel("mm", operand(0, (8, 8), "float32"), operand(1, (8, 8), "float32"),
                        operand(2, (8, 8), "float32"))
    return K.KernelExecutable("two", (add, mm))


def test_variant_shape():
    v = VmvxTarget().compile(_two_kernels(), TargetOptions())
    assert v.format == "vmvx-bytecode" and v.target_backend == "vmvx" and v.features == ()
    assert [e.name for e in v.entry_points] == ["add1", "mm"]
    assert [e.binding_count for e in v.entry_points] == [2, 3]
    assert all(e.workgroup_count[0] >= 1 for e in v.entry_points)
    assert v.payload[4:8] == b"VMVX"
    eps = [EntryPoint(e.name, binding_count=e.binding_count) for e in v.entry_points]
    exe = VmvxLoader().load(v.payload, eps)
    assert exe.format == "vmvx-bytecode" and exe.entry_points == tuple(eps)
    bufs = [np.ones(256, np.float32).view(np.uint8).copy(), np.ones(64, np.float32).view(np.uint8),
            np.zeros(256, np.uint8)]
    exe.run(1, (1, 1, 1), 0, 1, bufs, ())
    np.testing.assert_array_equal(bufs[2].view(np.float32).reshape(8, 8), np.full((8, 8), 8.0))


def test_compile_rejects_invalid_kernels_and_unknown_options():
    bad = K.GenericKernel("bad", (4,), ("parallel",), (ident(operand(0, (3,), "float32")),),
                          (ident(operand(1, (4,), "float32")),), (), (K.Input(0),))
    with pytest.raises(CompileError, match="'bad'.*size 3"):
        VmvxTarget().compile(K.KernelExecutable("e", (bad,)), TargetOptions())
    with pytest.raises(OptionError, match="no options"):
        VmvxTarget().compile(_two_kernels(), TargetOptions({"cpu": "x"}))


def test_entry_point_mismatch_is_a_format_error():
    v = VmvxTarget().compile(_two_kernels(), TargetOptions())
    with pytest.raises(ModuleFormatError, match="2 kernels.*1 entry points"):
        VmvxLoader().load(v.payload, [EntryPoint("add1", binding_count=2)])


@pytest.mark.parametrize("payload", [b"", b"VMVX", b"\0" * 8, b"1234VMVX" + b"\xff" * 40,
                                     b"abcdefgh" * 10])
def test_garbage_payloads(payload):
    with pytest.raises(ModuleFormatError, match="vmvx-bytecode"):
        VmvxLoader().load(payload, ())


def test_every_truncation_is_a_format_error():
    payload = VmvxTarget().compile(_two_kernels(), TargetOptions()).payload
    for n in range(0, len(payload), 7):
        try:
            VmvxLoader().load(payload[:n], ())
        except ModuleFormatError:
            continue
        raise AssertionError(f"truncation to {n} bytes loaded")  # pragma: no cover


_PAYLOAD = None


def _payload() -> bytes:
    global _PAYLOAD
    if _PAYLOAD is None:
        _PAYLOAD = VmvxTarget().compile(_two_kernels(), TargetOptions()).payload
    return _PAYLOAD


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1,
                max_size=6))
def test_mutated_payloads_never_crash(mutations):
    data = bytearray(_payload())
    for pos, byte in mutations:
        data[pos % len(data)] = byte
    try:
        exe = VmvxLoader().load(bytes(data), ())
    except ModuleFormatError:
        return
    # A mutation may still decode; running it must end in a hal error or succeed.
    bufs = [np.zeros(4096, np.uint8) for _ in range(3)]
    for entry in range(len(exe.entry_points)):
        try:
            exe.run(entry, (2, 1, 1), 0, 2, bufs, ())
        except HalError:
            pass


def test_too_small_binding_is_a_runtime_error():
    _variant, exe = compile_one(K.GenericKernel(
        "copy", (16,), ("parallel",), (ident(operand(0, (16,), "int32")),),
        (ident(operand(1, (16,), "int32")),), (), (K.Input(0),)))
    with pytest.raises(HalRuntimeError, match="binding 1 .*40 bytes"):
        exe.run(0, (1, 1, 1), 0, 1, [np.zeros(64, np.uint8), np.zeros(40, np.uint8)], ())
    with pytest.raises(HalRuntimeError, match="needs 2 bindings"):
        exe.run(0, (1, 1, 1), 0, 1, [np.zeros(64, np.uint8)], ())
    with pytest.raises(HalRuntimeError, match="entry point 3"):
        exe.run(3, (1, 1, 1), 0, 1, [], ())
    with pytest.raises(HalRuntimeError, match="not a valid tile"):
        exe.run(0, (1, 1, 1), 0, 5, [np.zeros(64, np.uint8)] * 2, ())


def test_reused_bindings_and_new_bindings_both_work():
    _, exe = compile_one(K.GenericKernel(
        "neg", (4,), ("parallel",), (ident(operand(0, (4,), "float32")),),
        (ident(operand(1, (4,), "float32")),),
        (K.ScalarOp("neg", (K.Input(0),), "float32"),), (K.Result(0),)))
    a = np.arange(4, dtype=np.float32).view(np.uint8).copy()
    out = np.zeros(16, np.uint8)
    for _ in range(3):  # same arrays: cached views
        exe.run(0, (1, 1, 1), 0, 1, [a, out], ())
        np.testing.assert_array_equal(out.view(np.float32), -np.arange(4))
    a2 = (np.arange(4, dtype=np.float32) * 10).view(np.uint8).copy()
    out2 = np.zeros(16, np.uint8)
    exe.run(0, (1, 1, 1), 0, 1, [a2, out2], ())
    np.testing.assert_array_equal(out2.view(np.float32), -np.arange(4) * 10)


def test_plugin_registers_target_and_loader():
    from hal_vmvx import plugin

    from hal_core.descriptors import resolve

    assert plugin.HAL_PLUGIN_API_VERSION == "1.0"
    (t,) = plugin.hal_register_targets()
    (ld,) = plugin.hal_register_executable_loaders()
    assert t.name == "vmvx" and t.formats == ("vmvx-bytecode",)
    assert t.drivers == ("local-sync", "local-task") and ld.format == "vmvx-bytecode"
    assert resolve(t.factory)().name == "vmvx"
    assert resolve(ld.factory)().format == "vmvx-bytecode"


def test_empty_operands_need_no_bytes_in_their_binding():
    # a zero-size operand placed past the end of a short binding range is never touched
    empty = K.KernelOperand(0, (0, 3), "float32", byte_offset=4096)
    k = K.GenericKernel("e", (0, 3), ("parallel", "reduction"), (ident(empty),),
                        (K.MappedOperand(K.KernelOperand(1, (0,), "float32", 4096),
                                         K.IndexingMap.of_dims(2, (0,))),), (), (K.Input(0),),
                        ("sum",))
    _, exe = compile_one(k)
    exe.run(0, (1, 1, 1), 0, 1, [np.zeros(0, np.uint8), np.zeros(0, np.uint8)], ())
    x = K.KernelOperand(0, (3, 0), "float32", byte_offset=4096)
    k = K.GenericKernel("r", (3, 0), ("parallel", "reduction"), (ident(x),),
                        (K.MappedOperand(operand(1, (3,), "float32"),
                                         K.IndexingMap.of_dims(2, (0,))),), (), (K.Input(0),),
                        ("max",))
    _, exe = compile_one(k)
    out = np.zeros(12, np.uint8)
    exe.run(0, (1, 1, 1), 0, 1, [np.zeros(0, np.uint8), out], ())
    np.testing.assert_array_equal(out.view(np.float32), [-np.inf] * 3)
