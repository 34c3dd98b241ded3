"""The HAL conformance tests (shipped with hal-core) against the example driver.

The same as running ``pytest --hal-driver=example`` by hand; run in a child pytest so that the
CTS's collection does not mix with this suite's. Features the driver lists in
``ExampleDriver.cts_unsupported`` are skipped with the reason given there, and nothing else.
"""

from __future__ import annotations

import re

from conftest import run


def test_the_hal_cts_passes():
    proc = run(["-m", "pytest", "-q", "-p", "no:cacheprovider", "--hal-driver=example", "-rs"])
    tail = proc.stdout[-4000:] + proc.stderr[-2000:]
    assert proc.returncode == 0, f"the CTS failed against the example driver:\n{tail}"
    assert re.search(r"\d+ passed", proc.stdout), tail
    from hal_example.driver import ExampleDriver

    for line in proc.stdout.splitlines():
        if line.startswith("SKIPPED"):
            assert any(f"support {feature!r}" in line
                       for feature in ExampleDriver.cts_unsupported), (
                f"a CTS test was skipped for a reason the driver does not declare: {line}")
