"""Fixtures for the runtime tests: devices of both local drivers, both execution models."""

from __future__ import annotations

import pytest

from hal_core.module.model import ExecutionModel

DEVICES = ("local-sync", "local-task")
MODELS = (ExecutionModel.ASYNC, ExecutionModel.INLINE)


@pytest.fixture(params=DEVICES)
def device_name(request) -> str:
    return request.param


@pytest.fixture(params=MODELS, ids=lambda m: m.name.lower())
def model(request) -> ExecutionModel:
    return request.param
