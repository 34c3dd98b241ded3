"""hal's end-to-end op suite, compiled with --target-backends=example and run on the device.

The suite lives in hal's source tree (``tests/e2e``); point ``HAL_E2E_DIR`` at it when this
plugin is not inside a hal checkout. Cases that need a kernel the example target declines
(gather) are deselected by :data:`DECLINED`; test_target.py checks
that they are declined with a clear error.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from conftest import TEMPLATE, run

#: e2e case ids that need a kernel the example target declines.
DECLINED = ("gather",)


def _e2e_dir() -> Path | None:
    given = os.environ.get("HAL_E2E_DIR")
    candidates = [Path(given)] if given else [TEMPLATE.parent / "tests" / "e2e"]
    return next((p for p in candidates if (p / "e2e_support.py").is_file()), None)


def test_the_e2e_suite_passes_on_the_example_device():
    e2e = _e2e_dir()
    if e2e is None:
        pytest.skip("hal's e2e suite (tests/e2e of a hal checkout) was not found; set "
                    "HAL_E2E_DIR=/path/to/hal/tests/e2e")
    deselect = " and ".join(f"not {word}" for word in DECLINED)
    proc = run(["-m", "pytest", "-q", "-p", "no:cacheprovider", str(e2e), "-k", deselect,
                "--ignore", str(e2e / "test_e2e_inline.py"), "--ignore",
                str(e2e / "test_e2e_coverage.py")],
               env={"HAL_E2E_TARGETS": "example=example"}, cwd=e2e)
    tail = proc.stdout[-6000:] + proc.stderr[-2000:]
    assert proc.returncode == 0, f"e2e failures on the example device:\n{tail}"
    passed = int(re.search(r"(\d+) passed", proc.stdout).group(1))
    assert passed > 500, tail
