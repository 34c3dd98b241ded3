"""Listing must not import heavy dependencies (a behaviour test: what is in sys.modules)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.usefixtures("clean_hal_env")

HEAVY = ("numpy", "llvmlite", "vulkan", "onnx")

SCRIPT = """
import contextlib, io, json, sys
from hal_core.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    code = main(sys.argv[1:])
print(json.dumps({"code": code, "out": out.getvalue(), "modules": sorted(sys.modules)}))
"""


@pytest.mark.parametrize("argv", [["drivers", "list"], ["drivers", "list", "--json"],
                                  ["targets", "list"], ["plugins", "list"]])
def test_listing_leaves_heavy_modules_unimported(make_plugin, tmp_path, argv):
    # The fake plugin's factory module imports numpy; listing must never resolve factories.
    heavy = tmp_path / "heavy_factory_mod.py"
    heavy.write_text("import numpy\n\ndef create_driver(registry):\n    return None\n")
    plugin = make_plugin("light", drivers=("light-drv",), targets=("light-tgt",))
    plugin.write_text(plugin.read_text().replace('__name__ + ":create_driver"',
                                                 "'heavy_factory_mod:create_driver'"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAL_")}
    env["HAL_EXTERNAL_DRIVERS"] = str(plugin)  # installed first-party plugins load too
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-c", SCRIPT, *argv], capture_output=True,
                          text=True, env=env, timeout=60, check=False, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result["code"] == 0
    assert "light" in result["out"]  # the listing really ran and saw the plugin
    loaded = {name.split(".")[0] for name in result["modules"]}
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_the_check_above_would_see_numpy():
    # Guards the test itself: resolving a factory that imports numpy does show up.
    code = "import numpy, sys; print('numpy' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.stdout.strip() == "True"
