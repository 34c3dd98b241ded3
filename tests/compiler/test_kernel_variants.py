"""One executable per kernel: several variants per target, targets declining kernels, and
variant selection falling back when a loader is unavailable or a requirement is missing."""

from __future__ import annotations

import importlib
import sys

import numpy as np
import pytest
from compiler_support import build

import hal_core
from hal_core.compiler.pipeline import compile
from hal_core.errors import CompileError, UnsupportedKernelError
from hal_core.ir import ops as O

PICKY = '''
HAL_PLUGIN_API_VERSION = "1.0"
import dataclasses, os
from hal_core.descriptors import LoaderInfo, TargetInfo
from hal_core.hookspecs import hookimpl
from hal_core.compiler.target import TargetBackend
from hal_core.errors import UnsupportedKernelError

class Picky(TargetBackend):
    """vmvx under the format picky-bytecode; declines reductions; returns a tuned variant
    (needing TUNED_NEEDS) before a baseline one."""
    name = "picky"
    TUNED_NEEDS = "cpu:no-such-feature"

    def compile(self, executable, options):
        from hal_vmvx.target import VmvxTarget
        (kernel,) = executable.kernels
        if "reduction" in kernel.iterator_types:
            raise UnsupportedKernelError(f"picky does not lower kernel {kernel.name!r}: "
                                         "it has a reduction")
        v = VmvxTarget().compile(executable, options)
        base = dataclasses.replace(v, target_backend="picky", format="picky-bytecode")
        tuned = dataclasses.replace(base, features=(self.TUNED_NEEDS,))
        return [tuned, base]

class PickyLoader:
    format = "picky-bytecode"
    LOADS = []
    def load(self, payload, entry_points):
        from hal_vmvx.loader import create_loader
        self.LOADS.append(payload)
        return create_loader().load(payload, entry_points)

def create_target():
    return Picky()

def create_loader():
    return PickyLoader()

def probe():
    return os.environ.get("PICKY_LOADER_UNAVAILABLE") or None

@hookimpl
def hal_register_targets():
    return [TargetInfo(name="picky", description="declines reductions",
                       factory=__name__ + ":create_target", formats=("picky-bytecode",))]

@hookimpl
def hal_register_executable_loaders():
    return [LoaderInfo(format="picky-bytecode", description="vmvx in disguise",
                       factory=__name__ + ":create_loader", probe=__name__ + ":probe")]
'''


@pytest.fixture
def picky(tmp_path, monkeypatch, clean_hal_env):
    (tmp_path / "picky_target.py").write_text(PICKY)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("HAL_EXTERNAL_DRIVERS", "picky_target")
    sys.modules.pop("picky_target", None)
    return importlib.import_module("picky_target")


def _program():
    return build(lambda a: (O.exp(a) * 2.0, O.sum(a, axis=1)), ((3, 4), "float32"))


def _run(module, device):
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    with hal_core.load_module(module, device=device) as m:
        chosen = [(v.target_backend, v.features) for v in m.variants]
        out = m.main(a)
    np.testing.assert_allclose(out[0], np.exp(a) * 2.0, rtol=1e-6)
    np.testing.assert_allclose(out[1], a.sum(axis=1), rtol=1e-6)
    return chosen


@pytest.mark.parametrize("device", ["local-sync", "local-task"])
def test_a_declined_kernel_keeps_the_other_targets_variants(picky, device):
    m = compile(_program(), target_backends="picky,vmvx")
    by_target = [[v.target_backend for v in e.variants] for e in m.executables]
    assert sorted(by_target) == sorted([["picky", "picky", "vmvx"], ["vmvx"]])
    chosen = _run(m, device)
    # The elementwise kernel runs picky's baseline (the tuned one needs a missing feature);
    # the reduction, which picky declined, runs vmvx.
    assert sorted(chosen) == sorted([("picky", ()), ("vmvx", ())])


def test_the_first_variant_a_device_can_run_wins(picky):
    picky.Picky.TUNED_NEEDS = "cpu:sse2"  # a feature this host may well have
    try:
        m = compile(build(lambda a: O.exp(a), ((4,), "float32")), target_backends="picky")
    finally:
        picky.Picky.TUNED_NEEDS = "cpu:no-such-feature"
    (exe,) = m.executables
    assert [v.features for v in exe.variants] == [("cpu:sse2",), ()]
    with hal_core.load_module(m, device="local-sync") as loaded:
        from hal_local import cpu

        want = ("cpu:sse2",) if "sse2" in cpu.cpu_features() else ()
        assert loaded.variants[0].features == want


def test_a_kernel_every_target_declines_is_a_clear_error(picky):
    with pytest.raises(UnsupportedKernelError) as info:
        compile(_program(), target_backends="picky")
    message = str(info.value)
    assert "has no variant" in message and "target 'picky'" in message
    assert "it has a reduction" in message and "--target-backends=picky,vmvx" in message
    assert "reduce_sum" in message  # the kernel's tensor-IR op is named
    assert isinstance(info.value, CompileError)


@pytest.mark.parametrize("device", ["local-sync", "local-task"])
def test_an_unavailable_loader_falls_back_to_the_next_variant(picky, monkeypatch, device):
    m = compile(_program(), target_backends="picky,vmvx")
    monkeypatch.setenv("PICKY_LOADER_UNAVAILABLE", "the picky runtime is not installed")
    from hal_core.registry import reset_registry

    reset_registry()
    picky.PickyLoader.LOADS.clear()
    chosen = _run(m, device)
    assert chosen == [("vmvx", ()), ("vmvx", ())]
    assert not picky.PickyLoader.LOADS


def test_an_unavailable_loader_is_not_advertised(picky, monkeypatch):
    from hal_core.registry import get_registry, reset_registry

    with get_registry().create_device("local-sync") as dev:
        assert "picky-bytecode" in dev.query_formats()
    monkeypatch.setenv("PICKY_LOADER_UNAVAILABLE", "no picky runtime")
    reset_registry()
    with get_registry().create_device("local-sync") as dev:
        assert "picky-bytecode" not in dev.query_formats()
        assert dev.executable_cache.unavailable["picky-bytecode"] == "no picky runtime"


def test_inline_modules_fall_back_too(picky, monkeypatch):
    m = compile(_program(), target_backends="picky,vmvx", execution_model="inline")
    monkeypatch.setenv("PICKY_LOADER_UNAVAILABLE", "no picky runtime")
    from hal_core.registry import reset_registry

    reset_registry()
    assert _run(m, "local-sync") == [("vmvx", ()), ("vmvx", ())]


def test_malformed_requirement_from_a_target_is_a_compile_error(picky):
    picky.Picky.TUNED_NEEDS = "vulkan:api>="
    try:
        with pytest.raises(CompileError, match="target backend 'picky': malformed variant"):
            compile(build(lambda a: O.exp(a), ((4,), "float32")), target_backends="picky")
    finally:
        picky.Picky.TUNED_NEEDS = "cpu:no-such-feature"
