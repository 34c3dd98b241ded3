"""Fixtures for the vulkan-spirv tests: spirv-val and a lavapipe runner with validation on.

Without spirv-val or a Vulkan device the tests that need them skip with the reason, except in
CI (``CI`` set), where a missing tool is a failure: CI installs them (.ci/run).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "e2e"))


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must install it: see .ci/run)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def spirv_val():
    exe = shutil.which("spirv-val")
    if exe is None:
        _missing("spirv-val not found; install Debian's spirv-tools")

    def validate(binary: bytes, env: str = "vulkan1.1") -> None:
        r = subprocess.run([exe, "--target-env", env, "-"], input=binary, capture_output=True)
        assert r.returncode == 0, f"spirv-val --target-env {env}: {r.stderr.decode()}"
    return validate


@pytest.fixture(scope="session")
def vulkan_runner():
    try:
        from runner import Runner
        runner = Runner()
    except Exception as e:  # no loader (OSError), no driver (VkErrorIncompatibleDriver), ...
        _missing(f"no usable Vulkan device: {type(e).__name__}: {e}; install libvulkan1 and "
                 "mesa-vulkan-drivers")
    if not runner.validation and os.environ.get("CI"):
        runner.close()
        pytest.fail("the Khronos validation layer is missing (CI installs "
                    "vulkan-validationlayers: see .ci/run)")
    yield runner
    runner.close()
