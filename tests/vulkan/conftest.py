"""Fixtures for the vulkan driver tests.

Every device here runs with the Khronos validation layer (``HAL_VULKAN_VALIDATION=1``): a
device whose instance recorded a validation error fails its ``close()``, so the test fails.

Without a usable Vulkan (no loader, no driver, no validation layer) the tests skip with the
reason, except in CI (``CI=true``), where Vulkan is installed by ``.ci/run`` and its absence is
a failure.
"""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
os.environ["HAL_VULKAN_VALIDATION"] = "1"

_reason: list[str | None] = []


def vulkan_unavailable() -> str | None:
    if not _reason:
        from hal_vulkan.driver.instance import Instance
        from hal_core.errors import DeviceUnavailableError

        try:
            instance = Instance(validation=True)
        except DeviceUnavailableError as e:
            _reason.append(str(e))
        else:
            _reason.append(None if instance.physical_devices else "no Vulkan physical devices")
            instance.destroy()
    return _reason[0]


def require_vulkan() -> None:
    reason = vulkan_unavailable()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"Vulkan is required in CI (.ci/run installs it): {reason}")
    pytest.skip(f"Vulkan is not usable here: {reason}")


@pytest.fixture(scope="session")
def driver():
    require_vulkan()
    from hal_vulkan.driver.device import VulkanDriver

    return VulkanDriver()


@pytest.fixture
def device(driver):
    dev = driver.create_device()
    yield dev
    dev.close()  # raises when the validation layer reported errors


@pytest.fixture(scope="session")
def spirv_payload():
    require_vulkan()
    from spirv_kernels import AXPY_IOTA, assemble

    return assemble(AXPY_IOTA)
