"""Several target backends: one executable, one variant each, the same entry-point layout."""

from __future__ import annotations

import numpy as np
import pytest
from compiler_support import build

import hal_core
from hal_core.compiler.pipeline import compile
from hal_core.errors import CompileError
from hal_core.ir import ops as O

TWIN = '''
HAL_PLUGIN_API_VERSION = "1.0"
import dataclasses
from hal_core.descriptors import TargetInfo
from hal_core.hookspecs import hookimpl
from hal_core.compiler.target import TargetBackend

SEEN = []

class Twin(TargetBackend):
    """vmvx under another name and format; SHORT drops the last entry point (a broken target)."""
    name = "twin"
    SHORT = False

    def compile(self, executable, options):
        from hal_vmvx.target import VmvxTarget
        SEEN.append((executable, options))
        v = VmvxTarget().compile(executable, options)
        eps = v.entry_points[:-1] if self.SHORT else v.entry_points
        return dataclasses.replace(v, target_backend="twin", format="twin-bytecode",
                                   entry_points=eps)

def create():
    return Twin()

@hookimpl
def hal_register_targets():
    return [TargetInfo(name="twin", description="test twin of vmvx", factory=__name__ + ":create",
                       formats=("twin-bytecode",))]
'''


@pytest.fixture
def twin(tmp_path, monkeypatch, clean_hal_env):
    import importlib
    import sys

    (tmp_path / "twin_target.py").write_text(TWIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("HAL_EXTERNAL_DRIVERS", "twin_target")
    sys.modules.pop("twin_target", None)
    return importlib.import_module("twin_target")


def test_every_target_gets_the_same_kernels_and_the_same_layout(twin) -> None:
    ir = build(lambda a, b: (O.matmul(a, b) + 1.0, O.sum(a, axis=1)), ((3, 4), "float32"),
               ((4, 2), "float32"))
    m = compile(ir, target_backends="vmvx,twin,vmvx", execution_model="inline")
    assert len(m.executables) == 2  # one executable per kernel
    for exe in m.executables:
        assert [v.target_backend for v in exe.variants] == ["vmvx", "twin"]
        layouts = [[(e.name, e.binding_count, e.constant_count) for e in v.entry_points]
                   for v in exe.variants]
        assert layouts[0] == layouts[1] and len(layouts[0]) == 1
    assert len(twin.SEEN) == 2
    for kexe, options in twin.SEEN:
        assert len(kexe.kernels) == 1 and options.execution_model.name == "INLINE"
    a = np.ones((3, 4), np.float32)
    loaded = hal_core.load_module(m, device="local-sync")  # runs the vmvx variant
    try:
        out = loaded.main(a, np.ones((4, 2), np.float32))
    finally:
        loaded.close()
    np.testing.assert_allclose(out[0], np.full((3, 2), 5.0))


def test_a_target_that_returns_the_wrong_entry_points_is_refused(twin) -> None:
    twin.Twin.SHORT = True
    with pytest.raises(CompileError, match="target backend 'twin' returned 0 entry points for 1"):
        compile(build(lambda a: (O.exp(a), O.sum(a, axis=0)), ((3,), "float32")),
                target_backends=("twin",))


def test_a_target_with_the_wrong_binding_count_is_refused(twin, monkeypatch) -> None:
    import dataclasses

    original = twin.Twin.compile

    def skewed(self, executable, options):
        v = original(self, executable, options)
        eps = tuple(dataclasses.replace(e, binding_count=e.binding_count + 1)
                    for e in v.entry_points)
        return dataclasses.replace(v, entry_points=eps)

    monkeypatch.setattr(twin.Twin, "compile", skewed)
    with pytest.raises(CompileError, match="declares 3 bindings and 0 push constants; kernel"):
        compile(build(lambda a: O.exp(a), ((3,), "float32")), target_backends=("twin",))
