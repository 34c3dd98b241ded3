"""The CTS as users run it: ``pytest --hal-driver=NAME`` in a fresh process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import pytest


def run_pytest(args, cwd, env=None):
    env = dict(os.environ if env is None else env)
    env.pop("PYTEST_ADDOPTS", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize("driver", ["local-sync", "local-task"])
def test_cts_passes_on_local_driver(driver, tmp_path):
    proc = run_pytest([f"--hal-driver={driver}", "-rs"], tmp_path)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "skipped" not in proc.stdout, proc.stdout[-2000:]


@pytest.mark.parametrize("driver", ["local-sync", "local-task"])
def test_cts_dispatch_suites_pass_with_llvm_cpu_executables(driver, tmp_path):
    proc = run_pytest([f"--hal-driver={driver}", "--hal-target=llvm-cpu", "-rs",
                       "-k", "dispatch or executable"], tmp_path)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "skipped" not in proc.stdout, proc.stdout[-2000:]


def test_cts_with_a_target_the_device_cannot_run_is_a_usage_error(tmp_path):
    proc = run_pytest(["--hal-driver=local-sync", "--hal-target=no-such-target"], tmp_path)
    assert proc.returncode != 0
    assert "no-such-target" in proc.stdout + proc.stderr


def test_cts_on_a_named_device(tmp_path):
    proc = run_pytest(
        [
            "--hal-driver=local-task",
            "--hal-device=local-task://?workers=1",
            "-k",
            "semaphore or queue",
        ],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-4000:]


def test_plugin_is_inert_without_the_option(tmp_path):
    (tmp_path / "test_probe.py").write_text(
        textwrap.dedent("""
        import sys

        def test_nothing_heavy_loaded(request):
            assert request.config.pluginmanager.has_plugin("hal_cts")
            assert "hal_core.registry" not in sys.modules
            assert "hal_core.hal" not in sys.modules
            assert "numpy" not in sys.modules
    """)
    )
    proc = run_pytest([], tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "1 passed" in proc.stdout


def test_unsupported_features_are_skipped_with_the_drivers_reason(tmp_path):
    (tmp_path / "partial_driver.py").write_text(
        textwrap.dedent("""
        HAL_PLUGIN_API_VERSION = "1.0"
        from hal_core.descriptors import DriverInfo
        from hal_core.hookspecs import hookimpl
        from hal_local.sync import SyncDriver

        class PartialDriver(SyncDriver):
            name = "partial-sync"
            cts_unsupported = {"reusable_command_buffers": "records one-shot buffers only"}

            def _parse(self, uri):
                if uri is not None and uri.startswith("partial-sync"):
                    uri = "local-sync" + uri[len("partial-sync"):]
                return super()._parse(uri)

        def create_driver(registry):
            return PartialDriver(registry)

        @hookimpl
        def hal_register_drivers():
            return [DriverInfo("partial-sync", "test", "partial_driver:create_driver")]
    """)
    )
    env = dict(
        os.environ,
        HAL_EXTERNAL_DRIVERS=str(tmp_path / "partial_driver.py"),
        PYTHONPATH=str(tmp_path),
    )
    proc = run_pytest(["--hal-driver=partial-sync", "-rs", "-k", "command_buffer"], tmp_path, env)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert re.search(r"passed, [1-9]\d* skipped", proc.stdout), proc.stdout[-2000:]
    assert (
        "does not support 'reusable_command_buffers': records one-shot buffers only" in proc.stdout
    )


def test_unknown_driver_is_reported(tmp_path):
    proc = run_pytest(["--hal-driver=no-such-driver", "-x"], tmp_path)
    assert proc.returncode != 0
    assert "--hal-driver=no-such-driver" in proc.stderr
