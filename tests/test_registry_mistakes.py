"""Plugin-author mistakes are reported, not silent (issue 6): a misspelt hook, a hook function
without ``@hookimpl``, and one external file named twice."""

from __future__ import annotations

import logging
import os

import pytest

from hal_core.errors import PluginError
from hal_core.registry import Registry

pytestmark = pytest.mark.usefixtures("clean_hal_env")

MISSPELT = """
@hookimpl
def hal_register_driver():
    return [DriverInfo(name="lost", description="never registered", factory=__name__ + ":x")]
"""
UNMARKED = """
def hal_register_targets():
    return []
"""


def external(*paths, **kwargs) -> Registry:
    return Registry(autoload=False, external=[str(p) for p in paths], builtins=(), **kwargs)


def test_a_misspelt_hook_is_reported_with_a_did_you_mean(make_plugin, caplog):
    path = make_plugin("typo", drivers=("good",), body=MISSPELT)
    registry = external(path)
    with caplog.at_level(logging.WARNING, logger="hal_core.registry"):
        (record,) = registry.plugins()
    assert record.status == "loaded"  # its correct hooks still work
    assert [e.name for e in registry.drivers()] == ["good"]
    assert "hal_register_driver, which is not a hal hook; did you mean hal_register_drivers?" \
        in record.error
    assert any("hal_register_driver," in p for p in registry.problems())
    assert "did you mean hal_register_drivers" in caplog.text


def test_a_hook_without_hookimpl_is_reported(make_plugin):
    registry = external(make_plugin("bare", drivers=("ok",), body=UNMARKED))
    (record,) = registry.plugins()
    assert "defines hal_register_targets without @hookimpl" in record.error
    assert len(registry.problems()) == 1


@pytest.mark.parametrize("body", [MISSPELT, UNMARKED], ids=["misspelt", "unmarked"])
def test_mistakes_are_fatal_under_strict_plugins(make_plugin, monkeypatch, body):
    monkeypatch.setenv("HAL_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="HAL_STRICT_PLUGINS=1.*hal_register_"):
        external(make_plugin("strict", body=body)).plugins()


def test_a_correct_plugin_has_no_problems(make_plugin):
    registry = external(make_plugin("fine", drivers=("fine",), targets=("fine-t",)))
    assert registry.problems() == []
    assert registry.plugins()[0].error is None


def test_one_external_file_named_twice_is_loaded_once(make_plugin, monkeypatch):
    path = make_plugin("mydrv", drivers=("mydrv",))
    monkeypatch.chdir(path.parent)
    registry = external(path.name, f".{os.sep}{path.name}", str(path))
    (record,) = registry.plugins()
    assert record.status == "loaded" and record.error is None
    assert [e.name for e in registry.drivers()] == ["mydrv"]
    assert registry.drivers()[0].error is None  # no conflict with itself
    assert registry.problems() == []
