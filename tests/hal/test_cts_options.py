"""The CTS options (issue 6): ``--hal-device=URI`` alone runs the CTS on that URI's driver; a
URI that does not fit the driver, or names a device that cannot be created, is one clear line
rather than an error in the setup of every test."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def run_pytest(args, cwd):
    env = dict(os.environ)
    env.pop("PYTEST_ADDOPTS", None)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
                          check=False)


def test_hal_device_alone_runs_the_cts_on_its_driver(tmp_path):
    proc = run_pytest(["--hal-device=local-task://?workers=1", "-k", "semaphore or driver"],
                      tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "error" not in proc.stdout.lower()


@pytest.mark.parametrize("args, message", [
    (["--hal-driver=local-sync", "--hal-device=local-task://"],
     "--hal-device=local-task:// is not a device of driver 'local-sync'"),
    (["--hal-device=local-task://?workers=zz"],
     "--hal-device=local-task://?workers=zz: cannot create the device"),
    (["--hal-device=no-such-driver://"], "--hal-device=no-such-driver://: unknown driver"),
    (["--hal-device=://"], "expected a device URI"),
])
def test_a_bad_device_is_one_line_not_an_error_per_test(tmp_path, args, message):
    proc = run_pytest(args, tmp_path)
    assert proc.returncode == 4, proc.stdout[-2000:]  # pytest's usage error
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and message in errors[0], proc.stderr
    assert " error" not in proc.stdout  # nothing collected, so no setup errors
