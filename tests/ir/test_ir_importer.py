"""The text importer that the core's builtin plugin registers."""

from __future__ import annotations

from pathlib import Path

import pytest

from hal_core.descriptors import resolve
from hal_core.errors import IRParseError, UsageError
from hal_core.ir.importer import import_text

TEXT = """func.func @main(%a: tensor<2xf32>) -> tensor<2xf32> {
  %0 = exp %a : (tensor<2xf32>) -> tensor<2xf32>
  return %0 : tensor<2xf32>
}
"""


def test_imports_paths_and_bytes(tmp_path: Path) -> None:
    p = tmp_path / "m.hal"
    p.write_text(TEXT)
    assert str(import_text(p)) == TEXT
    assert str(import_text(str(p))) == TEXT
    assert import_text(TEXT.encode()) == import_text(p)


def test_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read the IR file .*missing.hal"):
        import_text(tmp_path / "missing.hal")
    p = tmp_path / "bad.hal"
    p.write_text(TEXT.replace("exp", "epx"))
    with pytest.raises(IRParseError, match=r"bad.hal:2:8: unknown op 'epx'; did you mean 'exp'"):
        import_text(p)
    p.write_bytes(b"func.func @main() {\n  \xff\xfe")
    with pytest.raises(IRParseError, match=r"bad.hal:2:3: the file is not UTF-8 text"):
        import_text(p)


def test_the_builtin_plugin_factory_resolves() -> None:
    from hal_core.builtin_plugin import hal_register_importers

    (info,) = hal_register_importers()
    assert resolve(info.factory) is import_text
