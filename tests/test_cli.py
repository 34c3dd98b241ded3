"""The `hal` discovery commands, run in subprocesses against fake plugins."""

from __future__ import annotations

import json

import pytest

from hal_core.hookspecs import HAL_PLUGIN_API_VERSION

pytestmark = pytest.mark.usefixtures("clean_hal_env")


def ext_env(*paths, autoload="0"):
    return {"HAL_EXTERNAL_DRIVERS": ",".join(str(p) for p in paths),
            "HAL_PLUGINS_AUTOLOAD": autoload}


def test_drivers_list_table_shows_provenance_and_tolerates_a_broken_plugin(
        make_plugin, site, install_fake_dist, run_hal):
    good = make_plugin("tbl", directory=site, drivers=("accel-a", "accel-b"))
    install_fake_dist(site, "hal-accel", "0.4", {"accel": good.stem})
    bad = make_plugin("broken", body="raise ImportError('libvendor.so not found')\n")
    env = {"PYTHONPATH": str(site), "HAL_EXTERNAL_DRIVERS": str(bad)}
    result = run_hal(["drivers", "list"], env)
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["NAME", "DESCRIPTION", "PROVIDED", "BY", "STATUS"]
    accel = [r for r in rows if r.startswith("accel-")]
    assert len(accel) == 2
    for row in accel:
        assert "hal-accel==0.4" in row and row.rstrip().endswith("registered")
    assert rows[0].index("hal-accel") == header.index("PROVIDED BY")  # aligned columns
    assert "libvendor.so not found" in result.stderr and str(bad) in result.stderr


def test_drivers_list_json_and_probe(make_plugin, run_hal):
    ok = make_plugin("jok", drivers=("fine",))
    missing = make_plugin("jmissing", drivers=("nohw",), body="UNAVAILABLE = 'no hardware'\n")
    result = run_hal(["drivers", "list", "--probe", "--json"], ext_env(ok, missing))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    drivers = {d["name"]: d for d in data["drivers"]}
    assert drivers["fine"]["status"] == "available"
    assert (drivers["nohw"]["status"], drivers["nohw"]["reason"]) == ("unavailable",
                                                                      "no hardware")
    assert drivers["fine"]["distribution"] == f"external: {ok}"
    assert data["problems"] == []


def test_duplicate_driver_shows_in_listing_naming_both(
        make_plugin, site, install_fake_dist, run_hal):
    one = make_plugin("da", directory=site, drivers=("twin",))
    two = make_plugin("db", directory=site, drivers=("twin",))
    install_fake_dist(site, "hal-one", "1.0", {"one": one.stem})
    install_fake_dist(site, "hal-two", "1.1", {"two": two.stem})
    result = run_hal(["drivers", "list", "--json"], {"PYTHONPATH": str(site)})
    twins = [d for d in json.loads(result.stdout)["drivers"] if d["name"] == "twin"]
    assert [t["status"] for t in twins] == ["failed", "failed"]
    assert "hal-one==1.0" in twins[0]["reason"] and "hal-two==1.1" in twins[0]["reason"]
    named = run_hal(["devices", "list", "twin"], {"PYTHONPATH": str(site)})
    assert named.returncode == 1 and "hal-one==1.0" in named.stderr


def test_devices_list_all_tolerates_one_failure_named_failure_is_an_error(make_plugin, run_hal):
    good = make_plugin("dgood", drivers=("cpu0",))
    crash = "def probe():\n    import os, signal\n    os.kill(os.getpid(), signal.SIGILL)\n"
    bad = make_plugin("dbad", drivers=("crashy",), body=crash)
    env = ext_env(good, bad)
    result = run_hal(["devices", "list"], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["DRIVER", "URI", "NAME", "cpu0", "cpu0://0", "cpu0",
                                     "device", "0"]
    assert "driver 'crashy' failed: SIGILL" in result.stderr
    named = run_hal(["devices", "list", "crashy"], env)
    assert named.returncode == 1
    assert named.stderr.count("\n") == 1 and "SIGILL" in named.stderr
    assert "Traceback" not in named.stderr
    debug = run_hal(["--debug", "devices", "list", "crashy"], env)
    assert debug.returncode == 1 and "Traceback" in debug.stderr


def test_devices_dump_text_and_json(make_plugin, run_hal):
    env = ext_env(make_plugin("dump", drivers=("dumpy",)))
    text = run_hal(["devices", "dump", "dumpy"], env)
    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines() == ["dumpy://0  (dumpy device 0, driver dumpy)",
                                        "  cores: 1", "  uri_seen: dumpy://0",
                                        "  formats: fake-format", "  features: (none)"]
    data = json.loads(run_hal(["devices", "dump", "--json"], env).stdout)
    assert data["devices"][0]["driver"] == "dumpy"


def test_unknown_names_are_usage_errors_with_suggestion(make_plugin, run_hal):
    env = ext_env(make_plugin("names", drivers=("local-task",)))
    result = run_hal(["devices", "list", "local-tsk"], env)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        ("hal: error: unknown driver 'local-tsk'; available: local-task; "
         "did you mean 'local-task'?")]
    for argv in (["frobnicate"], ["drivers"], ["drivers", "list", "--bogus"], []):
        bad = run_hal(argv, env)
        assert bad.returncode == 2 and len(bad.stderr.splitlines()) == 1, (argv, bad.stderr)
        assert bad.stderr.startswith("hal: error: ")


def test_disable_plugin_option_adds_to_environment(make_plugin, run_hal):
    a = make_plugin("disa", drivers=("drv-a",))
    b = make_plugin("disb", drivers=("drv-b",))
    env = {**ext_env(a, b), "HAL_DISABLE_PLUGINS": str(a)}
    result = run_hal(["--disable-plugin", str(b), "plugins", "list", "--json"], env)
    statuses = {p["name"]: p["status"] for p in json.loads(result.stdout)["plugins"]
                if p["source"] == "external"}
    assert statuses == {str(a): "disabled", str(b): "disabled"}
    drivers = run_hal(["--disable-plugin", str(b), "drivers", "list", "--json"], env)
    assert json.loads(drivers.stdout)["drivers"] == []


def test_plugins_and_targets_list(make_plugin, site, install_fake_dist, run_hal):
    path = make_plugin("tg", directory=site, drivers=("tdrv",), targets=("ttarget",))
    install_fake_dist(site, "hal-tg", "3.0", {"tg": path.stem})
    old = make_plugin("old", directory=site, api="2.1")
    install_fake_dist(site, "hal-old", "0.1", {"old": old.stem})
    env = {"PYTHONPATH": str(site)}
    plugins = {p["name"]: p for p in json.loads(run_hal(["plugins", "list", "--json"],
                                                          env).stdout)["plugins"]}
    assert plugins["tg"] == {"name": "tg", "module": path.stem, "distribution": "hal-tg",
                             "version": "3.0", "api_version": "1.0", "source": "entry-point",
                             "status": "loaded", "error": None}
    assert plugins["old"]["status"] == "incompatible"
    assert "API 2.1" in plugins["old"]["error"] and \
        f"API {HAL_PLUGIN_API_VERSION}" in plugins["old"]["error"]
    text = run_hal(["plugins", "list"], env).stdout
    assert any(line.startswith("old ") and "incompatible:" in line for line in text.splitlines())
    targets = run_hal(["targets", "list"], env)
    (row,) = [line for line in targets.stdout.splitlines() if line.startswith("ttarget")]
    assert row.split()[-4:] == ["fake-format", "tdrv", "hal-tg==3.0", "registered"]


def test_strict_plugins_fails_the_command(make_plugin, run_hal):
    env = {**ext_env(make_plugin("st", body="raise RuntimeError('bad')\n")),
           "HAL_STRICT_PLUGINS": "1"}
    result = run_hal(["drivers", "list"], env)
    assert result.returncode == 1 and "HAL_STRICT_PLUGINS=1" in result.stderr
