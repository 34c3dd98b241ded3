"""plugins/onnx/README.md's supported-operator list is generated from the converter table."""

from __future__ import annotations

from pathlib import Path

from hal_onnx import docs
from hal_onnx.converters import CONVERTERS

#: The source tree's README (the installed package, a wheel in CI, carries no README).
README = Path(__file__).resolve().parents[2] / "plugins" / "onnx" / "README.md"


def test_readme_lists_exactly_the_converters():
    text = README.read_text()
    assert docs.current_block(text) == docs.render(), \
        "plugins/onnx/README.md is stale: run python -m hal_onnx.docs"
    for name in CONVERTERS:
        assert f"`{name}`" in docs.current_block(text)


def test_registration_is_light():
    import subprocess
    import sys

    code = ("import sys, hal_onnx.plugin as p; p.hal_register_importers(); "
            "print(sorted(m for m in ('onnx', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_importer_is_registered_for_onnx_files():
    from hal_core.registry import get_registry

    [entry] = [i for i in get_registry().importers() if i.info.name == "onnx"]
    assert entry.info.extensions == (".onnx",)
    assert entry.info.factory == "hal_onnx.importer:import_onnx"
