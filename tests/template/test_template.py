"""A renamed, pip-installed copy of the template works everywhere hal looks for plugins."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np

NAME = "mychip"  # what tests/template/conftest.py renames the template to

MODEL = """func.func @main(%x: tensor<2x3xf32>, %w: tensor<3x2xf32>) -> tensor<2x2xf32> {
  %0 = matmul %x, %w : (tensor<2x3xf32>, tensor<3x2xf32>) -> tensor<2x2xf32>
  %1 = reduce_sum %0 {axes = [1], keepdims = true} : (tensor<2x2xf32>) -> tensor<2x1xf32>
  %2 = sub %0, %1 : (tensor<2x2xf32>, tensor<2x1xf32>) -> tensor<2x2xf32>
  return %2 : tensor<2x2xf32>
}
"""


def _drivers(proc) -> dict:
    assert proc.returncode == 0, proc.stderr
    return {d["name"]: d for d in json.loads(proc.stdout)["drivers"]}


def test_rename_left_no_trace_of_the_old_name(chip):
    assert (chip.source / f"hal_{NAME}" / "driver.py").is_file()
    for path in chip.source.rglob("*"):
        if path.is_file() and "egg-info" not in str(path) and path.suffix != ".pyc":
            text = path.read_text(encoding="utf-8")
            assert not re.search("example", text, re.IGNORECASE), f"{path} still says example"


def test_listed_with_its_distribution_and_version(chip):
    drivers = _drivers(chip.hal(["drivers", "list", "--json"]))
    assert drivers[NAME]["distribution"] == f"hal-{NAME}"
    assert drivers[NAME]["version"] == "0.1.0"
    assert drivers[NAME]["status"] == "registered"
    assert "local-task" in drivers  # the first-party plugins are still there
    targets = json.loads(chip.hal(["targets", "list", "--json"]).stdout)
    (target,) = [t for t in targets["targets"] if t["name"] == NAME]
    assert target["formats"] == [f"{NAME}-program"]


def test_compile_and_run(chip):
    model = chip.work / "model.mlir"
    model.write_text(MODEL)
    out = chip.work / "model.halm"
    proc = chip.hal(["compile", str(model), f"--target-backends={NAME}", "-o", str(out)])
    assert proc.returncode == 0, proc.stderr
    proc = chip.hal(["run", f"--device={NAME}", f"--module={out}", "--function=main",
                     "--input=2x3xf32=1 2 3 4 5 6", "--input=3x2xf32=1 0 0 1 1 1",
                     "--output=@" + str(chip.work / "y.npy")])
    assert proc.returncode == 0, proc.stderr
    x = np.arange(1, 7, dtype=np.float32).reshape(2, 3)
    w = np.array([[1, 0], [0, 1], [1, 1]], np.float32)
    y = x @ w
    np.testing.assert_allclose(np.load(chip.work / "y.npy"), y - y.sum(1, keepdims=True))
    # A module for the local drivers does not run on the accelerator, and hal says which flag.
    local = chip.work / "local.halm"
    assert chip.hal(["compile", str(model), "--target-backends=vmvx", "-o",
                     str(local)]).returncode == 0
    proc = chip.hal(["run", f"--device={NAME}", f"--module={local}", "--function=main",
                     "--input=2x3xf32=0", "--input=3x2xf32=0"])
    assert proc.returncode != 0 and f"--target-backends={NAME}" in proc.stderr


def test_the_cts_passes(chip):
    proc = chip.run(["-m", "pytest", "-q", "-p", "no:cacheprovider", f"--hal-driver={NAME}"])
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert re.search(r"[1-9]\d* passed", proc.stdout)


def test_external_drivers_work_without_installing(chip):
    """HAL_EXTERNAL_DRIVERS in this interpreter, where the plugin is not installed."""
    env = {"HAL_EXTERNAL_DRIVERS": f"hal_{NAME}.plugin", "PYTHONPATH": str(chip.source)}
    drivers = _drivers(chip.hal(["drivers", "list", "--json"], env, python=Path(sys.executable)))
    assert drivers[NAME]["distribution"] == f"external: hal_{NAME}.plugin"
    model = chip.work / "ext.mlir"
    model.write_text(MODEL)
    out = chip.work / "ext.halm"
    assert chip.hal(["compile", str(model), f"--target-backends={NAME}", "-o", str(out)], env,
                    python=Path(sys.executable)).returncode == 0
    proc = chip.hal(["run", f"--device={NAME}", f"--module={out}", "--function=main",
                     "--input=2x3xf32=1", "--input=3x2xf32=1"], env, python=Path(sys.executable))
    assert proc.returncode == 0, proc.stderr
    assert "2x2xf32=[-3 -3][-3 -3]" in proc.stdout  # (x @ w) - its row sums


def test_disable_plugins_hides_it(chip):
    for spec in (f"hal-{NAME}", NAME):
        drivers = _drivers(chip.hal(["drivers", "list", "--json"], {"HAL_DISABLE_PLUGINS": spec}))
        assert NAME not in drivers and "local-sync" in drivers


def test_two_plugins_claiming_the_name_are_an_error_naming_both(chip, install_fake_dist,
                                                                 tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "clone_plugin.py").write_text(_plugin(drivers=(NAME,)))
    install_fake_dist(site, "hal-clone", "2.3.4", {"clone": "clone_plugin"})
    proc = chip.hal(["drivers", "list", "--json"], {"PYTHONPATH": str(site)})
    listing = json.loads(proc.stdout)
    text = json.dumps(listing)
    assert f"hal-{NAME}" in text and "hal-clone" in text
    problems = " ".join(listing["problems"])
    assert NAME in problems and f"hal-{NAME}" in problems and "hal-clone" in problems
    proc = chip.hal(["devices", "list", NAME], {"PYTHONPATH": str(site)})
    assert proc.returncode != 0
    assert f"hal-{NAME}" in proc.stderr and "hal-clone" in proc.stderr


def test_incompatible_api_version_is_refused_with_its_message(chip, install_fake_dist, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "future_plugin.py").write_text(_plugin(drivers=("future",), api="2.0"))
    install_fake_dist(site, "hal-future", "9.0", {"future": "future_plugin"})
    proc = chip.hal(["plugins", "list", "--json"], {"PYTHONPATH": str(site)})
    assert proc.returncode == 0, proc.stderr
    (record,) = [p for p in json.loads(proc.stdout)["plugins"] if p["name"] == "future"]
    assert record["status"] == "incompatible"
    from hal_core.hookspecs import HAL_PLUGIN_API_VERSION

    assert "2.0" in record["error"] and HAL_PLUGIN_API_VERSION in record["error"]
    assert "hal-future" in record["error"] or record["distribution"] == "hal-future"
    drivers = _drivers(chip.hal(["drivers", "list", "--json"], {"PYTHONPATH": str(site)}))
    assert "future" not in drivers and NAME in drivers


def test_a_plugin_raising_at_import_is_isolated(chip, install_fake_dist, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "broken_plugin.py").write_text("raise RuntimeError('vendor SDK not found')\n")
    install_fake_dist(site, "hal-broken", "0.0.1", {"broken": "broken_plugin"})
    proc = chip.hal(["drivers", "list", "--json"], {"PYTHONPATH": str(site)})
    drivers = _drivers(proc)
    assert NAME in drivers and "local-task" in drivers
    plugins = json.loads(chip.hal(["plugins", "list", "--json"],
                                  {"PYTHONPATH": str(site)}).stdout)["plugins"]
    (record,) = [p for p in plugins if p["name"] == "broken"]
    assert record["status"] == "failed" and "vendor SDK not found" in record["error"]


def _plugin(drivers: tuple[str, ...], api: str = "1.0") -> str:
    return (f"HAL_PLUGIN_API_VERSION = {api!r}\n"
            "from hal_core.descriptors import DriverInfo\n"
            "from hal_core.hookspecs import hookimpl\n\n"
            "@hookimpl\n"
            "def hal_register_drivers():\n"
            f"    return [DriverInfo(name=n, description='a rival', factory='nowhere:create')"
            f" for n in {drivers!r}]\n")


def test_the_renamed_plugins_own_tests_pass(chip):
    """The copy's own suite (its CTS run, device, target, plugin tests and hal's e2e op suite on
    the renamed device) passes in the environment it was installed into."""
    e2e = Path(__file__).resolve().parents[1] / "e2e"
    proc = chip.run(["-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
                     str(chip.source / "tests")], {"HAL_E2E_DIR": str(e2e)}, timeout=900)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert re.search(r"[1-9]\d* passed", proc.stdout)
    assert "SKIPPED" not in proc.stdout, proc.stdout[-3000:]
