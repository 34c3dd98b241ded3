"""Importer options: ``hal compile --<importer>-<key>=VALUE`` and
``compile(..., importer_options=...)`` reach the importer's factory."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

import hal_core
from hal_core.cli import main
from hal_core.errors import UsageError
from hal_core.module.reader import load_module_file

TEMPLATE = """func.func @main(%x: tensor<{n}xf32>) -> tensor<{n}xf32> {
  %0 = mul %x, %x
  return %0 : tensor<{n}xf32>
}
"""


@pytest.fixture
def shaped(tmp_path, monkeypatch, clean_hal_env):
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    monkeypatch.setenv("HAL_EXTERNAL_DRIVERS", "shaped_importer")
    sys.modules.pop("shaped_importer", None)
    importlib.import_module("shaped_importer")
    path = tmp_path / "model.shaped"
    path.write_text(TEMPLATE)
    (tmp_path / "model.plain").write_text(TEMPLATE.replace("{n}", "3"))
    return path


def _inputs(path) -> tuple:
    m = load_module_file(path)
    return m.functions[0].inputs[0].shape


def test_python_api_passes_importer_options(shaped):
    m = hal_core.compile(shaped, ["vmvx"], importer_options={"length": "6"})
    assert m.functions[0].inputs[0].shape == (6,)
    assert hal_core.compile(shaped, ["vmvx"]).functions[0].inputs[0].shape == (4,)
    with hal_core.load_module(m, device="local-sync") as loaded:
        np.testing.assert_array_equal(loaded.main(np.arange(6, dtype=np.float32)),
                                      np.arange(6) ** 2)


def test_cli_routes_flags_by_importer_name(shaped, tmp_path):
    out = tmp_path / "m.halm"
    assert main(["compile", str(shaped), "--target-backends=vmvx", "--shaped-length=9",
                 "-o", str(out)]) == 0
    assert _inputs(out) == (9,)


def test_an_unknown_importer_option_is_the_importers_usage_error(shaped, tmp_path):
    with pytest.raises(UsageError, match="importer 'shaped' has no option 'lenght'; it knows"):
        hal_core.compile(shaped, ["vmvx"], importer_options={"lenght": "6"})
    assert main(["compile", str(shaped), "--target-backends=vmvx", "--shaped-lenght=9",
                 "-o", str(tmp_path / "m.halm")]) == 2


def test_options_for_an_importer_without_options_are_refused(shaped, tmp_path, capsys):
    plain = tmp_path / "model.plain"
    with pytest.raises(UsageError, match="importer 'plain' .* takes no options, got "
                                         "--plain-length"):
        hal_core.compile(plain, ["vmvx"], importer_options={"length": "6"})
    assert hal_core.compile(plain, ["vmvx"]).functions[0].inputs[0].shape == (3,)
    text = tmp_path / "model.mlir"
    text.write_text(TEMPLATE.replace("{n}", "3"))
    with pytest.raises(UsageError, match="the text importer has no options, got --text-x"):
        hal_core.compile(text, ["vmvx"], importer_options={"x": "1"})
    # an option for an importer that does not read this input is an unrecognized flag
    assert main(["compile", str(text), "--target-backends=vmvx", "--shaped-length=9",
                 "-o", str(tmp_path / "m.halm")]) == 2
    assert "--<importer>-<option>=VALUE for the importer in use (text)" in \
        capsys.readouterr().err


def test_importer_options_without_an_importer_are_refused():
    from hal_core import ir

    b = ir.Builder()
    with b.function("main", [("x", (2,), "f32")]) as f:
        f.ret(f.args[0])
    with pytest.raises(UsageError, match="no importer runs"):
        hal_core.compile(b, ["vmvx"], importer_options={"length": "2"})
