"""Fixtures for the vulkan driver tests.

Every device here runs with the Khronos validation layer (``HAL_VULKAN_VALIDATION=1`` unless the
environment sets it otherwise): a
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
os.environ.setdefault("HAL_VULKAN_VALIDATION", "1")

from vk_kernels import require_vulkan  # noqa: E402


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
    from vk_kernels import axpy_iota

    return axpy_iota()
