"""Fixtures shared by the CTS suites (collected only under ``--hal-driver``)."""

from __future__ import annotations

from typing import Any

import pytest

from hal_core.cts.plugin import skip_unsupported


@pytest.fixture(autouse=True)
def _hal_feature_gate(request: pytest.FixtureRequest, hal_driver: Any) -> None:
    skip_unsupported(request, hal_driver)
