"""Closes the devices the e2e suite shares between its cases."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def _close_shared_devices():
    yield
    import e2e_support

    for dev in e2e_support._devices.values():
        dev.close()
    e2e_support._devices.clear()
