"""Two constants with equal bytes share one pool entry, so a dispatch may bind it twice; native
code takes bindings as noalias, which two reads of the same bytes satisfy."""

from __future__ import annotations

import numpy as np
import pytest

import hal_core
from hal_core.ir import Builder


@pytest.mark.parametrize("device", ["local-sync", "local-task"])
def test_equal_constants_bound_twice_read_only_run(device):
    b = Builder()
    with b.function("main", [("x", (4, 8), "float32")]) as f:
        (x,) = f.args
        c1 = f.constant(np.arange(8, dtype=np.float32))
        c2 = f.constant(np.arange(8, dtype=np.float32))   # equal bytes: one pool entry
        f.ret(x * c1 + c2)
    module = hal_core.compile(b.module(), target_backends=["llvm-cpu"])
    assert len(module.constants) == 1
    x = np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32)
    with hal_core.load_module(module, device=device) as m:
        c = np.arange(8, dtype=np.float32)
        np.testing.assert_allclose(m.main(x), x * c + c, rtol=1e-6)


def test_a_written_binding_overlapping_another_is_still_refused():
    from hal_core.errors import UsageError
    from hal_core.hal.command_buffer import CommandBufferMode
    from hal_core.registry import get_registry

    b = Builder()
    with b.function("main", [("x", (16,), "float32")]) as f:
        (x,) = f.args
        f.ret(x + 1.0)
    module = hal_core.compile(b.module(), target_backends=["llvm-cpu"])
    dev = get_registry().create_device("local-sync")
    try:
        v = module.executables[0].variants[0]
        exe = dev.executable_cache.prepare(v.format, v.payload, v.entry_points)
        assert exe.written_bindings(0) == frozenset({1})
        cb = dev.create_command_buffer(CommandBufferMode.REUSABLE, binding_capacity=1)
        cb.begin()
        with pytest.raises(UsageError, match="overlap"):
            cb.dispatch(exe, 0, tuple(v.entry_points[0].workgroup_count), [(0, 0, 64)] * 2)
            cb.end()
    finally:
        dev.close()
