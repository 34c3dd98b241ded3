"""A plugin made from external_driver_template/, as a third party would make it.

One session fixture copies the template to a temporary folder, renames it ``mychip`` with its
``rename.py`` and pip-installs it (``--no-deps --no-build-isolation``: fast, offline) into a
fresh virtual environment. The environment sees this interpreter's packages (hal-core and the
first-party plugins) through a ``.pth`` file that adds this environment's site-packages as a
site dir, so only the plugin is new in it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import pytest

TEMPLATE = Path(__file__).resolve().parents[2] / "external_driver_template"
NAME = "mychip"


@dataclass(frozen=True)
class Chip:
    source: Path      # the renamed copy of the template
    python: Path      # the fresh environment's interpreter (hal-mychip installed)
    work: Path        # a scratch folder

    def run(self, args: list[str], env: dict[str, str] | None = None, python: Path | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
        """``python ARGS`` in the fresh environment (or ``python``), HAL_* variables cleared."""
        full = {k: v for k, v in os.environ.items()
                if not k.startswith("HAL_") and k != "PYTHONPATH"}
        full.update(env or {})
        return subprocess.run([str(python or self.python), *args], capture_output=True,
                              text=True, env=full, cwd=self.work, timeout=timeout, check=False)

    def hal(self, args: list[str], env: dict[str, str] | None = None,
            python: Path | None = None) -> subprocess.CompletedProcess:
        return self.run(["-m", "hal_core.cli", *args], env, python)


def _check(proc: subprocess.CompletedProcess, what: str) -> None:
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n"
                           f"{proc.stderr[-3000:]}")


@pytest.fixture(scope="session")
def chip(tmp_path_factory: pytest.TempPathFactory) -> Chip:
    root = tmp_path_factory.mktemp("third-party")
    source = root / f"hal-{NAME}"
    shutil.copytree(TEMPLATE, source, ignore=shutil.ignore_patterns(
        "__pycache__", "*.egg-info", "build", ".pytest_cache"))
    _check(subprocess.run([sys.executable, "rename.py", NAME], cwd=source, capture_output=True,
                          text=True, check=False), "rename.py")
    venv = root / "venv"
    # --without-pip: pip, setuptools and wheel come from this environment through the .pth.
    _check(subprocess.run([sys.executable, "-m", "venv", "--without-pip",
                           "--system-site-packages", str(venv)], capture_output=True, text=True,
                          check=False), "python -m venv")
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], capture_output=True, text=True, check=True)
    here = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(site.stdout.strip(), "outer-env.pth").write_text(
        "".join(f"import site; site.addsitedir({p!r})\n" for p in sorted(here)))
    work = root / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # Built from a copy: setuptools leaves build/ and *.egg-info (which would make the source
    # folder look installed on PYTHONPATH) beside the sources it builds.
    build = root / "build-copy"
    shutil.copytree(source, build)
    _check(subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps",
                           "--no-build-isolation", str(build)], capture_output=True, text=True,
                          env=env, cwd=work, check=False), "pip install of the renamed template")
    return Chip(source, python, work)
