from __future__ import annotations

import pytest
from hal_testing import FORMAT, FakeRegistry, PythonExecutable

from hal_core.errors import IncompatibleModuleError, ModuleFormatError
from hal_core.hal import EntryPoint
from hal_core.hal.executable_cache import LoaderExecutableCache
from hal_core.hal.executable import ExecutableLoader
from hal_core.module.model import VariantEntryPoint


def test_prepares_through_the_registered_loader_created_once():
    registry = FakeRegistry()
    cache = LoaderExecutableCache(registry, "dev://")
    assert cache.formats() == (FORMAT,) and cache.can_prepare(FORMAT)
    assert registry.created == 0  # loaders are created on first use
    eps = [EntryPoint("ids", binding_count=1, constant_count=1)]
    exe = cache.prepare(FORMAT, b"ids", eps)
    cache.prepare(FORMAT, b"ids", eps)
    assert isinstance(exe, PythonExecutable) and exe.entry_points == tuple(eps)
    assert registry.created == 1


def test_accepts_the_module_entry_points():
    cache = LoaderExecutableCache(FakeRegistry())
    exe = cache.prepare(FORMAT, b"add", [VariantEntryPoint("add", (4, 1, 1), (1, 1, 1), 3, 0)])
    assert exe.entry_points == (EntryPoint("add", (1, 1, 1), 3, 0),)


def test_unknown_format_names_what_it_can_prepare():
    cache = LoaderExecutableCache(FakeRegistry(), "local-sync://")
    with pytest.raises(IncompatibleModuleError, match=r"local-sync://.*'spirv'.*test-python"):
        cache.prepare("spirv", b"", [])


def test_loader_errors():
    cache = LoaderExecutableCache(FakeRegistry())
    with pytest.raises(ModuleFormatError, match="unknown kernels"):
        cache.prepare(FORMAT, b"nope", [EntryPoint("nope")])

    class Broken(ExecutableLoader):
        format = FORMAT

        def load(self, payload, entry_points):
            raise IndexError("loader bug")

    broken = LoaderExecutableCache(FakeRegistry(Broken()))
    with pytest.raises(ModuleFormatError, match="'test-python' loader failed.*IndexError"):
        broken.prepare(FORMAT, b"x", [])
