"""Shared helpers of the plugin's tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TEMPLATE = Path(__file__).resolve().parents[1]


def run(args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None,
        timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``python ARGS`` (this interpreter) and return the finished process."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd or TEMPLATE, timeout=timeout)


@pytest.fixture
def device():
    from hal_core.registry import get_registry

    dev = get_registry().create_device("example")
    yield dev
    dev.close()
