"""Choosing the default device (issue 6): HAL_DEFAULT_DEVICE entries are tried in a child
process first, so one that crashes natively is skipped instead of killing `hal run`; and
``load_module(mod)`` with no device honours HAL_DEFAULT_DEVICE."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from runtime_modules import add_module

from hal_core.errors import DeviceUnavailableError
from hal_core.module.writer import write_module
from hal_core.registry import Registry, get_registry, reset_registry
from hal_core.runtime import load_module

pytestmark = pytest.mark.usefixtures("clean_hal_env")

CRASH_ON_CREATE = """
def create_driver(registry):
    import os, signal
    os.kill(os.getpid(), signal.SIGSEGV)
"""


def test_load_module_without_a_device_honours_hal_default_device(monkeypatch):
    monkeypatch.setenv("HAL_DEFAULT_DEVICE", "local-sync")
    reset_registry()
    with load_module(add_module()) as m:
        assert m.device.id.startswith("local-sync")
    monkeypatch.delenv("HAL_DEFAULT_DEVICE")
    reset_registry()
    with load_module(add_module()) as m:
        assert m.device.id.startswith("local-task")


def test_a_default_device_that_segfaults_is_skipped(make_plugin, monkeypatch):
    crashy = make_plugin("crashy", drivers=("crashy",), body=CRASH_ON_CREATE)
    monkeypatch.setenv("HAL_DEFAULT_DEVICE", "crashy,local-sync")
    registry = Registry(external=[str(crashy)])
    device = registry.create_device()
    try:
        assert device.id.startswith("local-sync")
    finally:
        device.close()
    assert registry._default_checked["crashy"].reason.startswith("SIGSEGV")
    device = registry.create_device()  # the child's answer is remembered, not asked again
    device.close()


def test_when_every_default_device_fails_the_error_names_each(make_plugin, monkeypatch):
    crashy = make_plugin("crashy", drivers=("crashy",), body=CRASH_ON_CREATE)
    absent = make_plugin("absent", drivers=("absent",), body="UNAVAILABLE = 'no device node'\n")
    monkeypatch.setenv("HAL_DEFAULT_DEVICE", "crashy,absent")
    registry = Registry(external=[str(crashy), str(absent)])
    with pytest.raises(DeviceUnavailableError) as info:
        registry.create_device()
    message = str(info.value)
    assert "crashy: failed: SIGSEGV" in message and "absent: unavailable: no device node" in message


def test_hal_run_survives_a_segfaulting_default_device(make_plugin, tmp_path):
    crashy = make_plugin("crashy", drivers=("crashy",), body=CRASH_ON_CREATE)
    module = tmp_path / "add.halm"
    write_module(add_module(), module)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAL_")}
    env.update(HAL_DEFAULT_DEVICE="crashy,local-task", HAL_EXTERNAL_DRIVERS=str(crashy))
    proc = subprocess.run([sys.executable, "-m", "hal_core.cli", "run", f"--module={module}",
                           "--input=4xf32=1", "--input=4xf32=2"], capture_output=True,
                          text=True, env=env, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr  # was -11 (SIGSEGV)
    assert proc.stdout.strip() == "result[0]: 4xf32=[3 3 3 3]"


def test_a_single_default_device_is_created_without_a_child(monkeypatch):
    # One entry is a named device: nothing to fall back on, so no probe process is spent.
    monkeypatch.setenv("HAL_DEFAULT_DEVICE", "local-sync")
    registry = get_registry()
    device = registry.create_device()
    device.close()
    assert registry._default_checked == {}
