"""Entry-point scratch end to end, with a target that compiles named kernels by decomposing
them: buffer planning puts the scratch in the transient arena and binds it after the kernel's
own bindings; modules run on both local drivers and both execution models."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

import hal_core
from hal_core import ir
from hal_core.ir import ops as O
from hal_core.compiler.passes.buffers import ALIGNMENT
from hal_core.module.model import Dispatch, Slot
from hal_core.module.reader import load_module_file
from hal_core.module.writer import write_module


@pytest.fixture
def decomposer(monkeypatch, clean_hal_env):
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    monkeypatch.setenv("HAL_EXTERNAL_DRIVERS", "decomposing_target")
    sys.modules.pop("decomposing_target", None)
    mod = importlib.import_module("decomposing_target")
    mod.DECOMPOSED.clear()
    return mod


RNG = np.random.default_rng(7)
X = RNG.standard_normal((2, 3, 9, 9)).astype(np.float32)
WC = RNG.standard_normal((4, 3, 3, 3)).astype(np.float32)
WM = RNG.standard_normal((36, 5)).astype(np.float32)
TABLE = RNG.standard_normal((5, 6)).astype(np.float32)


def program() -> ir.Module:
    """conv (padded) -> relu -> max pool -> matmul (constant weight) -> softmax, argmax; a
    gather of a constant table by the argmax."""
    b = ir.Builder()
    with b.function("main", [("x", X.shape, "f32")]) as f:
        (x,) = f.args
        y = O.relu(O.conv2d(x, f.constant(WC), padding=1))
        p = O.max_pool2d(y, 3, strides=3)
        h = O.reshape(p, (2, 36)) @ f.constant(WM)
        am = O.argmax(h, axis=1)
        f.ret(O.softmax(h, axis=1), am, O.gather(f.constant(TABLE), am, axis=0))
    return b.module()


def reference():
    m = hal_core.compile(program(), ["vmvx"])
    with hal_core.load_module(m, device="local-sync") as loaded:
        return [np.array(r) for r in loaded.main(X)]


@pytest.mark.parametrize("model", ["async", "inline"])
@pytest.mark.parametrize("device", ["local-sync", "local-task"])
def test_a_decomposing_target_runs_a_real_module(decomposer, model, device, tmp_path):
    m = hal_core.compile(program(), ["decomposer"], execution_model=model)
    assert len(decomposer.DECOMPOSED) >= 5  # conv, pool, matmul, softmax, argmax, gather
    (fn,) = m.functions
    scratch = {i: v.entry_points[0].scratch_size for i, e in enumerate(m.executables)
               for v in e.variants if v.entry_points[0].scratch_size}
    assert scratch  # conv padding, pool padding, softmax, argmax use scratch
    for op in fn.program:
        if isinstance(op, Dispatch) and op.executable in scratch:
            ep = m.executables[op.executable].variants[0].entry_points[0]
            assert len(op.bindings) == ep.binding_count
            extra = op.bindings[-1]
            assert extra.slot is Slot.TRANSIENT and extra.length == scratch[op.executable]
            assert extra.offset % ALIGNMENT == 0
            assert extra.offset + extra.length <= fn.transient_size
    path = tmp_path / "m.halm"
    write_module(m, path)
    again = load_module_file(path)
    assert [v.entry_points for e in again.executables for v in e.variants] == \
        [v.entry_points for e in m.executables for v in e.variants]
    want = reference()
    with hal_core.load_module(again, device=device) as loaded:
        for _ in range(2):  # the arena (scratch included) is reused by the next call
            got = loaded.main(X)
            np.testing.assert_allclose(got[0], want[0], rtol=1e-4, atol=1e-5)
            np.testing.assert_array_equal(got[1], want[1])
            np.testing.assert_array_equal(got[2], want[2])


def test_variants_without_scratch_get_the_binding_too(decomposer):
    # vmvx asks for no scratch; it still gets the extra binding (and ignores it), so both
    # variants keep one layout and one host program serves them
    m = hal_core.compile(program(), ["vmvx", "decomposer"])
    for exe in m.executables:
        vmvx, dec = exe.variants
        assert vmvx.entry_points[0].binding_count == dec.entry_points[0].binding_count
        assert vmvx.entry_points[0].scratch_size == 0
    with hal_core.load_module(m, device="local-task") as loaded:  # runs the vmvx variants
        got = loaded.main(X)
    want = reference()
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5)


def test_scratch_of_two_dispatches_shares_the_arena_by_liveness():
    from hal_core.compiler.passes.buffers import ConstantPool, plan_buffers
    from hal_core.compiler.passes.dispatch import form_dispatches
    from hal_core.compiler.passes.fusion import plan_fusion

    b = ir.Builder()
    with b.function("main", [("x", (64, 64), "f32")]) as f:
        (x,) = f.args
        f.ret(x.softmax(axis=1).softmax(axis=0))
    fn = b.module().functions[0]
    fd = form_dispatches(fn, plan_fusion(fn))
    assert len(fd.steps) == 2
    plain = plan_buffers(fd, ConstantPool())
    plan = plan_buffers(fd, ConstantPool(), [1000, 1000])
    assert set(plan.scratch) == {0, 1}
    a, c = plan.scratch[0], plan.scratch[1]
    assert a.length == c.length == 1000 and a.slot is Slot.TRANSIENT
    # each scratch lives during its dispatch only: the two may share space, and never overlap
    # the intermediate both dispatches touch
    inter = [r for r in plan.refs.values() if r.slot is Slot.TRANSIENT]
    for r in inter:
        for s in (a, c):
            assert r.offset + r.length <= s.offset or s.offset + s.length <= r.offset
    assert plan.transient_size <= plain.transient_size + 1024
