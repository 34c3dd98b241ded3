"""Every distribution's pyproject.toml uses the SPDX license string (issue 6: the
``project.license`` table form made setuptools print a deprecation warning per build)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the CI runs 3.11
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
PYPROJECTS = [ROOT / "pyproject.toml", *sorted(ROOT.glob("plugins/*/pyproject.toml")),
              *sorted(ROOT.glob("external_driver_template/**/pyproject.toml"))]


@pytest.mark.parametrize("path", PYPROJECTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_license_is_an_spdx_string_and_setuptools_understands_it(path):
    data = tomllib.loads(path.read_text())
    assert data["project"]["license"] == "Apache-2.0"
    # Setuptools rejects a License classifier beside an SPDX expression.
    assert not any(c.startswith("License ::") for c in data["project"].get("classifiers", ()))
    # The SPDX string form needs setuptools 77 (older ones reject it).
    requires = data["build-system"]["requires"]
    (setuptools,) = [r for r in requires if r.startswith("setuptools")]
    minimum = re.fullmatch(r"setuptools>=(\d+)(\.\d+)*", setuptools.replace(" ", ""))
    assert minimum and int(minimum.group(1)) >= 77, setuptools


def test_every_distribution_is_checked():
    assert len(PYPROJECTS) >= 3
