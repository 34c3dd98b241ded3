"""The CTS and the CLI on the vulkan driver, as users run them, in fresh processes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from vk_kernels import require_vulkan


@pytest.fixture(autouse=True)
def _vulkan():
    require_vulkan()


def run(args, cwd, **env):
    environ = dict(os.environ, HAL_VULKAN_VALIDATION="1", **env)
    environ.pop("PYTEST_ADDOPTS", None)
    return subprocess.run([sys.executable, *args], cwd=cwd, env=environ, capture_output=True,
                          text=True, timeout=600, check=False)


def test_cts_passes_with_validation(tmp_path):
    proc = run(["-m", "pytest", "-q", "-p", "no:cacheprovider", "--hal-driver=vulkan", "-rs"],
               tmp_path)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout
    # Skips only for what the driver declares or for tests needing a target it lacks.
    for line in proc.stdout.splitlines():
        if line.startswith("SKIPPED"):
            assert ("local_dispatch_abi" in line or "out_of_bounds_detection" in line
                    or "no registered target backend" in line), line


def test_cts_with_fence_tracking(tmp_path):
    proc = run(["-m", "pytest", "-q", "-p", "no:cacheprovider", "--hal-driver=vulkan",
                "--hal-device=vulkan://?sync=fence"], tmp_path)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_devices_dump_target_env(tmp_path):
    proc = run(["-m", "hal_core.cli", "devices", "dump", "vulkan", "--target-env"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.strip().splitlines()[-1]
    assert line.startswith("#vk.target_env<v1.") and line.endswith("}>"), line
    for key in ("maxComputeSharedMemorySize", "maxComputeWorkGroupInvocations",
                "maxComputeWorkGroupSize = dense<[", "subgroupSize"):
        assert key in line


def test_devices_list_gives_uuid_uris(tmp_path):
    proc = run(["-m", "hal_core.cli", "devices", "list", "vulkan"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "vulkan://" in proc.stdout


def test_target_env_is_what_the_vulkan_spirv_target_parses(driver):
    target_env = pytest.importorskip(
        "hal_vulkan.target_env", reason="the vulkan-spirv target is not in this distribution")
    for info in driver.query_available_devices():
        text = info.properties["target_env"]
        env = target_env.parse_target_env(text)
        assert target_env.render_target_env(env) == text
        limits = dict(env.limits)
        physical = driver.instance.physical_devices[0]
        assert limits["maxComputeSharedMemorySize"] == \
            physical.limits["maxComputeSharedMemorySize"]
        assert limits["subgroupSize"] == physical.subgroup_size
