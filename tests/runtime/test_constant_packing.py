"""Constant packing: a target packs a constant matmul weight once per load, never per call."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

import hal_core
from hal_core import ir
from hal_core.compiler import kernel_ir as K
from hal_core.module.model import ExecutionModel
from hal_core.module.reader import load_module_file
from hal_core.module.writer import write_module


@pytest.fixture
def packer(monkeypatch, clean_hal_env):
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    monkeypatch.setenv("HAL_EXTERNAL_DRIVERS", "packing_target")
    sys.modules.pop("packing_target", None)
    return importlib.import_module("packing_target")


@pytest.fixture
def pack_runs(monkeypatch):
    """Names of the vmvx kernels run, one entry per run() call."""
    from hal_vmvx.loader import VmvxExecutable

    runs: list[str] = []
    original = VmvxExecutable.run

    def counting(self, entry, *args):
        runs.append(self._kernels[entry].name)
        return original(self, entry, *args)

    monkeypatch.setattr(VmvxExecutable, "run", counting)
    return runs


W = (np.arange(12, dtype=np.float32).reshape(4, 3) - 5) / 3


def weights_program() -> ir.Module:
    b = ir.Builder()
    with b.function("main", [("x", (2, 4), "f32")]) as f:
        (x,) = f.args
        f.ret(x @ f.constant(W) + 1.0)
    with b.function("again", [("x", (2, 4), "f32")]) as f:  # main's kernel: shares its pack
        (x,) = f.args
        f.ret(x @ f.constant(W) + 1.0)
    with b.function("twice", [("x", (2, 4), "f32")]) as f:  # another kernel: its own pack
        (x,) = f.args
        w = f.constant(W)
        f.ret((x @ w) * 2.0)
    return b.module()


def test_dispatch_formation_marks_constant_operands():
    from hal_core.compiler.passes.dispatch import form_dispatches
    from hal_core.compiler.passes.fusion import plan_fusion

    fn = weights_program().functions[0]
    (step,) = form_dispatches(fn, plan_fusion(fn)).steps
    mm = step.kernel
    assert isinstance(mm, K.MatmulKernel)
    assert mm.rhs.constant and not mm.lhs.constant and not mm.out.constant
    assert K.constant_bindings(mm) == {mm.rhs.binding}


@pytest.mark.parametrize("model", [ExecutionModel.ASYNC, ExecutionModel.INLINE],
                         ids=["async", "inline"])
def test_a_constant_weight_is_packed_once_per_load(packer, pack_runs, tmp_path, model):
    m = hal_core.compile(weights_program(), ["packer"], execution_model=model.name.lower())
    assert len(m.executables) == 2  # main and again share one kernel
    (variant,) = m.executables[0].variants
    (pack,) = variant.entry_points[0].constant_packs
    assert variant.entry_points[pack.entry_point].name.startswith("pack_")
    path = tmp_path / "m.halm"
    write_module(m, path)
    again = load_module_file(path)  # the packs survive the file
    assert again.executables[0].variants[0].entry_points == variant.entry_points
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    for load in range(2):
        with hal_core.load_module(again, device="local-sync") as loaded:
            packs = [n for n in pack_runs if n.startswith("pack_")]
            assert len(packs) == 2 * (load + 1)  # packed at load (one per kernel), no call yet
            for _ in range(3):
                np.testing.assert_allclose(loaded.main(x), x @ W + 1.0, rtol=1e-6)
                np.testing.assert_allclose(loaded.again(x), x @ W + 1.0, rtol=1e-6)
                np.testing.assert_allclose(loaded.twice(x), (x @ W) * 2.0, rtol=1e-6)
        packs = [n for n in pack_runs if n.startswith("pack_")]
        assert len(packs) == 2 * (load + 1)  # calls never pack
    matmuls = [n for n in pack_runs if not n.startswith("pack_")]
    assert len(matmuls) == 2 * 3 * 3


def test_weights_passed_as_arguments_are_not_packed(packer, pack_runs):
    b = ir.Builder()
    with b.function("main", [("x", (2, 4), "f32"), ("w", (4, 3), "f32")]) as f:
        f.ret(f.args[0] @ f.args[1])
    m = hal_core.compile(b.module(), ["packer"])
    assert not any(ep.constant_packs for ep in m.executables[0].variants[0].entry_points)
    x = np.ones((2, 4), np.float32)
    with hal_core.load_module(m, device="local-task") as loaded:
        np.testing.assert_allclose(loaded.main(x, W), x @ W, rtol=1e-6)
    assert not [n for n in pack_runs if n.startswith("pack_")]


def test_a_pack_of_a_non_constant_binding_is_refused(packer, monkeypatch):
    import dataclasses

    from hal_core.errors import CompileError, ModuleFormatError
    from hal_core.module.model import ConstantPack

    real = packer.Packer.compile

    def bad(self, executable, options):
        v = real(self, executable, options)
        entry = v.entry_points[0].constant_packs[0].entry_point
        ep = dataclasses.replace(v.entry_points[0], constant_packs=(ConstantPack(0, entry, 32),))
        return dataclasses.replace(v, entry_points=(ep, *v.entry_points[1:]))

    monkeypatch.setattr(packer.Packer, "compile", bad)
    with pytest.raises(CompileError, match="packs binding 0, which is not a module constant"):
        hal_core.compile(weights_program(), ["packer"])
    # and a module file that claims such a pack fails the module checks
    monkeypatch.setattr(packer.Packer, "compile", real)
    m = hal_core.compile(weights_program(), ["packer"])
    v = m.executables[0].variants[0]
    entry = v.entry_points[0].constant_packs[0].entry_point
    ep = dataclasses.replace(v.entry_points[0], constant_packs=(ConstantPack(0, entry, 32),))
    broken = dataclasses.replace(m, executables=(dataclasses.replace(
        m.executables[0], variants=(dataclasses.replace(v, entry_points=(
            ep, *v.entry_points[1:])),)),))
    with pytest.raises(ModuleFormatError, match="must be a CONSTANT region"):
        hal_core.load_module(broken, device="local-sync")


def test_hal_dump_shows_packs(packer, tmp_path, capsys):
    from hal_core.cli import main

    path = tmp_path / "m.halm"
    write_module(hal_core.compile(weights_program(), ["packer"]), path)
    assert main(["dump", str(path)]) == 0
    out = capsys.readouterr().out
    assert "packs binding 1 at load with entry 1 (" in out


@pytest.mark.parametrize("change,message", [
    ({"entry_point": 0}, "load-time entry points must follow"),
    ({"entry_point": 9}, "load-time entry points must follow"),
    ({"binding": 7}, "must name a binding"),
    ({"packed_size": -1}, "packed size must be an integer"),
])
def test_malformed_packs_fail_the_module_checks(packer, change, message):
    import dataclasses

    from hal_core.errors import ModuleFormatError
    from hal_core.module.validate import check_module

    m = hal_core.compile(weights_program(), ["packer"])
    v = m.executables[0].variants[0]
    (p,) = v.entry_points[0].constant_packs
    ep = dataclasses.replace(v.entry_points[0],
                             constant_packs=(dataclasses.replace(p, **change),))
    broken = dataclasses.replace(m, executables=(dataclasses.replace(
        m.executables[0], variants=(dataclasses.replace(v, entry_points=(
            ep, *v.entry_points[1:])),)), *m.executables[1:]))
    with pytest.raises(ModuleFormatError, match=message):
        check_module(broken, "m", "recompile")


def test_an_original_read_only_packed_is_not_kept_on_the_device(packer):
    m = hal_core.compile(weights_program(), ["packer"])
    with hal_core.load_module(m, device="local-sync") as loaded:
        sizes = [memoryview(c.data).nbytes for c in loaded.module.constants]
    assert sizes[:len(m.constants)] == [0] * len(m.constants)  # W: every reader packs it
    assert sizes[len(m.constants):] == [W.nbytes] * 2  # one packed copy per kernel
    b = ir.Builder()
    with b.function("main", [("x", (2, 4), "f32")]) as f:
        w = f.constant(W)
        f.ret(f.args[0] @ w, w)  # W is also returned: a copy reads the original
    m = hal_core.compile(b.module(), ["packer"])
    x = np.ones((2, 4), np.float32)
    with hal_core.load_module(m, device="local-task") as loaded:
        assert memoryview(loaded.module.constants[0].data).nbytes == W.nbytes
        y, w_out = loaded.main(x)
    np.testing.assert_allclose(y, x @ W, rtol=1e-6)
    np.testing.assert_array_equal(w_out, W)
