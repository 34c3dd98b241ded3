"""Shared fixtures: fake plugins and fake installed distributions written under tmp_path."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # Compiled-object caches (llvm-cpu's ~/.cache/hal) go to a fresh directory per test run, so
    # tests never read objects a previous run or the user left. XDG_CACHE_HOME rather than a
    # HAL_ variable: clean_hal_env removes those, and subprocesses inherit it.
    import tempfile

    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="hal-test-cache-")


FAKE_PLUGIN = '''\
HAL_PLUGIN_API_VERSION = {api!r}

from dataclasses import dataclass, field

from hal_core.descriptors import DriverInfo, TargetInfo
from hal_core.hookspecs import hookimpl

UNAVAILABLE = None  # a reason string makes probe() report the driver unavailable


@dataclass(frozen=True)
class Info:
    uri: str
    name: str
    properties: dict = field(default_factory=dict)


class Device:
    def __init__(self, uri):
        self.id = uri

    def properties(self):
        return {{"uri_seen": self.id}}

    def query_formats(self):
        return ["fake-format"]

    def query_features(self):
        return []

    def close(self):
        pass


class Driver:
    def __init__(self, name):
        self.name = name

    def query_available_devices(self):
        return [Info(self.name + "://0", self.name + " device 0", {{"cores": 1}})]

    def create_device(self, uri=None):
        return Device(uri or self.name + "://0")


def create_driver(registry):
    return Driver(DRIVER_NAME)


def probe():
    return UNAVAILABLE


DRIVER_NAME = {drivers[0]!r}


@hookimpl
def hal_register_drivers():
    return [DriverInfo(name=n, description="fake driver " + n,
                       factory=__name__ + ":create_driver", probe=__name__ + ":probe")
            for n in {drivers!r}]


@hookimpl
def hal_register_targets():
    return [TargetInfo(name=n, description="fake target " + n, factory=__name__ + ":Driver",
                       formats=("fake-format",), drivers={drivers!r}) for n in {targets!r}]
'''


def plugin_source(drivers=("fake",), targets=(), api="1.0", body: str = "") -> str:
    """The source of a small, working plugin module; ``body`` is appended (to break it)."""
    return FAKE_PLUGIN.format(api=api, drivers=tuple(drivers), targets=tuple(targets)) + \
        textwrap.dedent(body)


@pytest.fixture
def make_plugin(tmp_path: Path):
    """Write a plugin module file; returns its path. Module names are unique per test."""

    def make(stem: str, directory: Path | None = None, **kwargs) -> Path:
        directory = directory or tmp_path
        directory.mkdir(parents=True, exist_ok=True)
        # In-process tests import these modules; a unique name keeps sys.modules from reusing one.
        path = directory / f"{stem}_{uuid.uuid4().hex[:8]}.py"
        path.write_text(plugin_source(**kwargs))
        return path

    return make


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A fresh sys.path entry in which fake distributions can be 'installed'."""
    directory = tmp_path / "site"
    directory.mkdir()
    monkeypatch.syspath_prepend(str(directory))
    return directory


def _install_fake_dist(site: Path, dist: str, version: str, plugins: dict[str, str]) -> None:
    """A ``dist-version.dist-info`` folder whose entry points name ``plugins`` (ep -> module)."""
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = ["[hal.plugins]"] + [f"{ep} = {module}" for ep, module in plugins.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture
def clean_hal_env(monkeypatch: pytest.MonkeyPatch):
    """No test sees the caller's HAL_* settings or another test's process-wide registry."""
    for name in list(os.environ):
        if name.startswith("HAL_"):
            monkeypatch.delenv(name)
    from hal_core.registry import reset_registry

    reset_registry()
    yield
    reset_registry()


def _run_hal(args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None,
             timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``hal`` (this interpreter's hal_core.cli) in a subprocess."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("HAL_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "hal_core.cli", *args], capture_output=True,
                          text=True, env=full_env, cwd=cwd, timeout=timeout, check=False)


# Helpers are handed out as fixtures: `from conftest import ...` would pick whichever conftest
# module was imported first (tests/hal/ has its own).
@pytest.fixture
def hal(capsys, clean_hal_env):
    """Run ``hal ARGS`` in-process; returns (exit status, stdout, stderr)."""
    from hal_core.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        status = main(list(args))
        out, err = capsys.readouterr()
        return status, out, err

    return run


@pytest.fixture
def install_fake_dist():
    return _install_fake_dist


@pytest.fixture
def run_hal(tmp_path: Path):
    """Runs from tmp_path, so `-m` imports hal_core as installed, not from the source tree."""

    def run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return _run_hal(args, env, cwd=tmp_path)

    return run
