"""Module files for the CLI tests (hand-built; see tests/runtime/runtime_modules.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "runtime"))


@pytest.fixture
def modules(tmp_path: Path) -> dict[str, Path]:
    from runtime_modules import add_module, chain_module

    from hal_core.module.model import ExecutionModel
    from hal_core.module.writer import write_module

    paths = {}
    for name, module in (("add", add_module()), ("chain", chain_module()),
                         ("inline", add_module(model=ExecutionModel.INLINE))):
        paths[name] = tmp_path / f"{name}.halm"
        write_module(module, paths[name])
    return paths
