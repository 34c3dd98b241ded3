"""HAL_EXTERNAL_DRIVERS: the plugin works from a source folder, without pip install."""

from __future__ import annotations

import json

from conftest import TEMPLATE, run

# Entry points off (the plugin may be pip-installed here too), the plugin named as a module
# that PYTHONPATH makes importable.
ENV = {"HAL_PLUGINS_AUTOLOAD": "0", "HAL_EXTERNAL_DRIVERS": "hal_example.plugin",
       "PYTHONPATH": str(TEMPLATE)}


def test_listed_compiled_and_run_without_installing(tmp_path):
    proc = run(["-m", "hal_core.cli", "drivers", "list", "--json"], env=ENV)
    assert proc.returncode == 0, proc.stderr
    (entry,) = json.loads(proc.stdout)["drivers"]
    assert entry["name"] == "example" and entry["status"] == "registered"
    assert entry["distribution"] == "external: hal_example.plugin"
    model = tmp_path / "m.mlir"
    model.write_text("func.func @main(%x: tensor<4xf32>) -> tensor<4xf32> {\n"
                     "  %0 = mul %x, %x : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>\n"
                     "  return %0 : tensor<4xf32>\n}\n")
    out = tmp_path / "m.halm"
    proc = run(["-m", "hal_core.cli", "compile", str(model), "--target-backends=example",
                "-o", str(out)], env=ENV)
    assert proc.returncode == 0, proc.stderr
    proc = run(["-m", "hal_core.cli", "run", "--device=example", f"--module={out}",
                "--function=main", "--input=4xf32=1 2 3 4"], env=ENV)
    assert proc.returncode == 0, proc.stderr
    assert "4xf32=[1 4 9 16]" in proc.stdout
