"""Registration stays light: listing the plugin imports neither numpy nor the driver."""

from __future__ import annotations

import json

from conftest import TEMPLATE, run

SCRIPT = """
import contextlib, io, json, sys
from hal_core.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    main(["drivers", "list"])
print(json.dumps(sorted(sys.modules)))
"""


def test_listing_imports_only_the_plugin_module():
    proc = run(["-c", SCRIPT], env={"HAL_PLUGINS_AUTOLOAD": "0",
                                    "HAL_EXTERNAL_DRIVERS": "hal_example.plugin",
                                    "PYTHONPATH": str(TEMPLATE)})
    assert proc.returncode == 0, proc.stderr
    modules = set(json.loads(proc.stdout))
    assert "hal_example.plugin" in modules
    assert not {"numpy", "hal_example.driver", "hal_example.target"} & modules
