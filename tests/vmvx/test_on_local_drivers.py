"""vmvx executables prepared by the real local drivers (through the plugin registry) and
dispatched from command buffers: local-sync runs the whole range, local-task splits it."""

from __future__ import annotations

import numpy as np
import pytest
from hal_vmvx.target import VmvxTarget
from harness import ident, operand

from hal_core.compiler import kernel_ir as K
from hal_core.compiler.target import TargetOptions
from hal_core.hal import CommandBufferMode, EntryPoint
from hal_core.registry import Registry

TIMEOUT = 30.0


@pytest.fixture(params=["local-sync", "local-task://?workers=3"])
def device(request):
    dev = Registry().create_device(request.param)
    yield dev
    dev.close()


def _prepare(device, kernels):
    variant = VmvxTarget().compile(K.KernelExecutable("e", tuple(kernels)), TargetOptions())
    eps = [EntryPoint(e.name, binding_count=e.binding_count) for e in variant.entry_points]
    exe = device.executable_cache.prepare(variant.format, variant.payload, eps)
    return exe, [e.workgroup_count for e in variant.entry_points]


def _submit(device, cbs, tables=None):
    sem = device.create_semaphore()
    device.queue_execute([], [(sem, 1)], cbs, tables)
    sem.wait(1, TIMEOUT)


def test_chain_of_vmvx_dispatches_with_a_barrier(device):
    n = 200_000  # several workgroups, so local-task spreads the first dispatch
    f = "float32"
    scale = K.GenericKernel(
        "scale", (n,), ("parallel",), (ident(operand(0, (n,), f)),),
        (ident(operand(1, (n,), f)),),
        (K.ScalarOp("mul", (K.Input(0), K.Const(3.0, f)), f),), (K.Result(0),))
    total = K.GenericKernel(
        "total", (n,), ("reduction",), (ident(operand(0, (n,), f)),),
        (K.MappedOperand(operand(1, (), "float64"), K.IndexingMap(1, ())),),
        (K.ScalarOp("cast", (K.Input(0),), "float64"),), (K.Result(0),), ("sum",))
    exe, counts = _prepare(device, [scale, total])
    assert counts[0][0] > 1
    x = np.random.default_rng(0).random(n, np.float32)
    alloc = device.allocator
    a, b, s = alloc.import_host(x), alloc.allocate_buffer(4 * n), alloc.allocate_buffer(8)
    cb = device.create_command_buffer(CommandBufferMode.ONE_SHOT)
    with cb:
        cb.dispatch(exe, 0, counts[0], [a, b])
        cb.execution_barrier()
        cb.dispatch(exe, 1, counts[1], [b, s])
    _submit(device, [cb])
    np.testing.assert_array_equal(b.map().view(np.float32), x * 3)
    np.testing.assert_allclose(s.map().view(np.float64)[0], (x * 3).astype(np.float64).sum(),
                               rtol=1e-9)


def test_reusable_matmul_with_new_bindings_each_call(device):
    f = "float32"
    mm = K.MatmulKernel("mm", operand(0, (64, 32), f), operand(1, (32, 48), f),
                        operand(2, (64, 48), f))
    exe, counts = _prepare(device, [mm])
    cb = device.create_command_buffer(CommandBufferMode.REUSABLE, binding_capacity=3)
    with cb:
        cb.dispatch(exe, 0, counts[0], [0, 1, 2])
    rng = np.random.default_rng(1)
    for _ in range(3):
        x, y = rng.random((64, 32), np.float32), rng.random((32, 48), np.float32)
        alloc = device.allocator
        out = alloc.allocate_buffer(64 * 48 * 4)
        _submit(device, [cb], [[alloc.import_host(x), alloc.import_host(y), out]])
        np.testing.assert_allclose(out.map().view(np.float32).reshape(64, 48), x @ y,
                                   rtol=1e-5)
