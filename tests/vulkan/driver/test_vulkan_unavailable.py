"""Without a Vulkan loader or driver, the vulkan driver is reported unavailable with the reason
and what to install; nothing crashes. Each case runs the CLI in a fresh process."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from vk_kernels import require_vulkan

INSTALL = "apt-get install libvulkan1 mesa-vulkan-drivers"


def hal(args, **env_overrides):
    env = dict(os.environ, **env_overrides)
    env.pop("HAL_VULKAN_VALIDATION", None)
    return subprocess.run([sys.executable, "-m", "hal_core.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def vulkan_row(stdout):
    return next(line for line in stdout.splitlines() if line.startswith("vulkan"))


@pytest.mark.parametrize("variable", ["VK_DRIVER_FILES", "VK_ICD_FILENAMES"])
def test_no_driver_is_reported_unavailable(variable):
    require_vulkan()  # the loader must be there to report a missing driver
    proc = hal(["drivers", "list", "--probe"], **{variable: "/nonexistent/icd.json",
                                                  "VK_DRIVER_FILES": "/nonexistent/icd.json"})
    assert proc.returncode == 0, proc.stderr
    row = vulkan_row(proc.stdout)
    assert "unavailable" in row and "no driver" in row and INSTALL in row, row


def test_no_loader_is_reported_unavailable(tmp_path):
    # A file that is not a shared library, found first on the library path: dlopen fails as
    # it does on a machine without libvulkan1.
    (tmp_path / "libvulkan.so.1").write_text("not an ELF file")
    proc = hal(["drivers", "list", "--probe"], LD_LIBRARY_PATH=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    row = vulkan_row(proc.stdout)
    assert "unavailable" in row and "no Vulkan loader" in row and INSTALL in row, row
    listing = hal(["devices", "list"], LD_LIBRARY_PATH=str(tmp_path))
    assert listing.returncode == 0, listing.stderr
    assert "vulkan" in listing.stderr and INSTALL in listing.stderr
    named = hal(["devices", "list", "vulkan"], LD_LIBRARY_PATH=str(tmp_path))
    assert named.returncode != 0 and "no Vulkan loader" in named.stderr
    assert "Traceback" not in named.stderr


def test_creating_a_device_without_a_driver_is_a_clear_error():
    require_vulkan()
    code = ("from hal_core.registry import get_registry\n"
            "try:\n    get_registry().create_device('vulkan')\n"
            "except Exception as e:\n    print(type(e).__name__, e)\n")
    env = dict(os.environ, VK_DRIVER_FILES="/nonexistent/icd.json")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("DeviceUnavailableError") and INSTALL in proc.stdout


def test_validation_requested_without_the_layer_is_a_clear_error(tmp_path):
    require_vulkan()
    # VK_LAYER_PATH replaces the loader's layer search path: no layer is found there.
    code = ("from hal_core.errors import DeviceUnavailableError\n"
            "from hal_vulkan.driver.instance import Instance\n"
            "try:\n    Instance()\n"
            "except DeviceUnavailableError as e:\n    print(e)\n")
    env = dict(os.environ, HAL_VULKAN_VALIDATION="1", VK_LAYER_PATH=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "validation layer is not installed" in proc.stdout
    assert "apt-get install vulkan-validationlayers" in proc.stdout
