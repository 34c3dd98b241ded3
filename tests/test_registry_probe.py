"""Driver probes run in a subprocess: crashes and hangs are reported, never fatal."""

from __future__ import annotations

import pytest

from hal_core.errors import UsageError
from hal_core.registry import Registry

pytestmark = pytest.mark.usefixtures("clean_hal_env")


def probe_all(paths, what="probe", timeout=30.0):
    registry = Registry(autoload=False, external=[str(p) for p in paths])
    return registry.probe_many([e.name for e in registry.drivers()], timeout=timeout, what=what)


def test_probe_reports_available_unavailable_and_native_crashes(make_plugin):
    crash = """
    def probe():
        import os, signal
        os.kill(os.getpid(), signal.{sig})
    """
    results = probe_all([
        make_plugin("ok", drivers=("ok",)),
        make_plugin("absent", drivers=("absent",), body="UNAVAILABLE = 'no device node'\n"),
        make_plugin("ill", drivers=("ill",), body=crash.format(sig="SIGILL")),
        make_plugin("segv", drivers=("segv",), body=crash.format(sig="SIGSEGV")),
        make_plugin("raises", drivers=("raises",),
                    body="def probe():\n    raise KeyError('vendor table')\n"),
    ])
    assert results["ok"].status == "available" and results["ok"].reason is None
    assert (results["absent"].status, results["absent"].reason) == ("unavailable",
                                                                    "no device node")
    assert results["ill"].status == "failed" and results["ill"].reason.startswith("SIGILL")
    assert results["segv"].status == "failed" and results["segv"].reason.startswith("SIGSEGV")
    assert results["raises"].status == "failed" and "KeyError" in results["raises"].reason


def test_hanging_probe_times_out(make_plugin):
    hang = "def probe():\n    import time\n    time.sleep(120)\n"
    results = probe_all([make_plugin("hang", drivers=("hang",), body=hang),
                         make_plugin("quick", drivers=("quick",))], timeout=3.0)
    assert results["hang"].status == "failed" and "timed out after 3 s" in results["hang"].reason
    assert results["quick"].status == "available"


def test_devices_and_dump_are_enumerated_in_the_child(make_plugin):
    path = make_plugin("enum", drivers=("enum",))
    (listed,) = probe_all([path], what="devices")["enum"].devices
    assert listed == {"uri": "enum://0", "name": "enum device 0", "properties": {"cores": 1}}
    (dumped,) = probe_all([path], what="dump")["enum"].devices
    assert dumped["properties"] == {"cores": 1, "uri_seen": "enum://0"}
    assert dumped["formats"] == ["fake-format"] and dumped["features"] == []


def test_probe_of_unknown_driver_is_a_usage_error(make_plugin):
    registry = Registry(autoload=False, external=[str(make_plugin("u", drivers=("real",)))])
    with pytest.raises(UsageError, match="did you mean 'real'"):
        registry.probe("rael")
