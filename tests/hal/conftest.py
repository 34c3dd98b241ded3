"""Local drivers built directly on a fake registry (no plugin discovery)."""

from __future__ import annotations

import pytest
from hal_local.sync import SyncDriver
from hal_local.task import TaskDriver
from hal_testing import FakeRegistry


@pytest.fixture
def registry():
    return FakeRegistry()


@pytest.fixture(params=["local-sync", "local-task"])
def device(request, registry):
    driver = SyncDriver(registry) if request.param == "local-sync" else TaskDriver(registry)
    dev = driver.create_device(None if request.param == "local-sync" else "local-task://?workers=3")
    yield dev
    dev.close()
