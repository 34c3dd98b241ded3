"""Variant selection and the error when no variant fits the device."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from runtime_modules import add_module

from hal_core.errors import IncompatibleModuleError
from hal_core.module.model import Executable, ExecutionModel, Variant
from hal_core.runtime import load_module


def _with_variants(module, make_variants):
    exe = module.executables[0]
    vmvx = exe.variants[0]
    return dataclasses.replace(module, executables=(
        Executable(exe.name, tuple(make_variants(vmvx))),))


def _spirv(vmvx: Variant) -> Variant:
    return Variant("vulkan-spirv", "spirv", ("vulkan-1.1",), vmvx.entry_points, b"\x03\x02\x23\x07")


def test_first_fitting_variant_wins(device_name, model):
    module = _with_variants(add_module(model=model), lambda v: [_spirv(v), v])
    with load_module(module, device_name) as m:
        assert [v.format for v in m.variants] == ["vmvx-bytecode"]
        np.testing.assert_array_equal(m.main(np.ones(4, np.float32), np.ones(4, np.float32)), 2)


def test_variant_needing_missing_features_is_skipped(model):
    needy = lambda v: dataclasses.replace(v, features=("no-such-cpu-feature",))
    module = _with_variants(add_module(model=model), lambda v: [needy(v), v])
    with load_module(module, "local-sync") as m:
        assert m.variants[0].features == ()


def test_no_fitting_variant_names_device_formats_and_compile_flag(device_name, model):
    module = _with_variants(add_module(model=model), lambda v: [_spirv(v)])
    with pytest.raises(IncompatibleModuleError) as info:
        load_module(module, device_name)
    message = str(info.value)
    assert f"device {device_name}://" in message
    assert "spirv (target vulkan-spirv" in message          # what the module holds
    assert "can prepare vmvx-bytecode" in message           # what the device can prepare
    assert "hal compile --target-backends=vmvx" in message  # how to make one that fits
    assert "'add_exe'" in message


def test_missing_features_are_named(model):
    needy = lambda v: dataclasses.replace(v, features=("avx9000",))
    module = _with_variants(add_module(model=model), lambda v: [needy(v)])
    with pytest.raises(IncompatibleModuleError, match="needs cpu:avx9000, which this CPU lacks"):
        load_module(module, "local-sync")


def test_failed_load_closes_the_device_it_created(monkeypatch):
    from hal_core.registry import get_registry

    created = []
    registry = get_registry()
    original = registry.create_device

    def spy(spec=None):
        created.append(original(spec))
        return created[-1]

    monkeypatch.setattr(registry, "create_device", spy)
    module = _with_variants(add_module(model=ExecutionModel.ASYNC), lambda v: [_spirv(v)])
    with pytest.raises(IncompatibleModuleError):
        load_module(module, "local-task")
    assert created and created[0].closed
