"""Modules whose executables take the address-mode dispatch ABI run in both execution models
(the inline model builds its steps with the local command buffer's builders)."""

from __future__ import annotations

import importlib
import sys

import numpy as np
import pytest

import hal_core
from hal_core.module.model import (
    BufferRef,
    Dispatch,
    Executable,
    ExecutionModel,
    Function,
    Module,
    Slot,
    TensorType,
    Variant,
    VariantEntryPoint,
)

PLUGIN = '''
HAL_PLUGIN_API_VERSION = "1.0"
import ctypes
from hal_core.descriptors import LoaderInfo
from hal_core.hookspecs import hookimpl
from hal_core.hal.local.executable import ExecutableLoader, LocalExecutable

SEEN = []

class AddressAdd(LocalExecutable):
    """out[i] = a[i] + b[i] * constants[0] over float32, one element per workgroup."""
    format = "test-address"
    binding_kind = "address"

    def __init__(self, entry_points):
        self.entry_points = tuple(entry_points)

    def run(self, entry, workgroup_count, first, last, bindings, constants):
        SEEN.append((type(bindings).__name__, type(constants).__name__))
        n = last - first
        a, b, out = ((ctypes.c_float * n).from_address(bindings[i] + 4 * first)
                     for i in range(3))
        scale = constants[0]
        for i in range(n):
            out[i] = a[i] + b[i] * scale

class Loader(ExecutableLoader):
    format = "test-address"
    def load(self, payload, entry_points):
        return AddressAdd(entry_points)

def create_loader():
    return Loader()

@hookimpl
def hal_register_executable_loaders():
    return [LoaderInfo(format="test-address", description="address-mode test kernels",
                       factory=__name__ + ":create_loader")]
'''


@pytest.fixture
def plugin(tmp_path, monkeypatch, clean_hal_env):
    (tmp_path / "address_loader.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("HAL_EXTERNAL_DRIVERS", "address_loader")
    sys.modules.pop("address_loader", None)
    return importlib.import_module("address_loader")


def _module(n: int, model: ExecutionModel) -> Module:
    t = TensorType((n,), "float32")
    ep = VariantEntryPoint("add", (n, 1, 1), binding_count=3, constant_count=1)
    variant = Variant("test", "test-address", (), (ep,), b"")
    program = (Dispatch(0, 0, (BufferRef(Slot.INPUT, 0, 0, 4 * n),
                               BufferRef(Slot.INPUT, 1, 0, 4 * n),
                               BufferRef(Slot.OUTPUT, 0, 0, 4 * n)), (3,)),)
    fn = Function("main", (t, t), (t,), program)
    return Module("addr", (fn,), (Executable("add", (variant,)),), execution_model=model)


@pytest.mark.parametrize("model", [ExecutionModel.ASYNC, ExecutionModel.INLINE])
@pytest.mark.parametrize("device", ["local-sync", "local-task"])
def test_address_mode_executables_run_in_both_models(plugin, model, device):
    n = 300
    x = np.arange(n, dtype=np.float32)
    y = np.full(n, 2.0, np.float32)
    with hal_core.load_module(_module(n, model), device=device) as m:
        for _ in range(2):
            np.testing.assert_array_equal(m.main(x, y), x + 6.0)
            np.testing.assert_array_equal(m.main(x[::-1].copy(), y), x[::-1] + 6.0)
    assert set(plugin.SEEN) == {("c_void_p_Array_3", "c_uint_Array_1")}
