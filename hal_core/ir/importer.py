"""The text importer: hal's tensor IR text (MLIR style) from a file, a string or bytes.

Registered by :mod:`hal_core.builtin_plugin` as the importer ``text``; ``hal compile`` picks it
for ``.mlir``, ``.hal`` and ``.txt`` inputs.
"""

from __future__ import annotations

import os

from hal_core.errors import UsageError
from hal_core.ir.module import Module
from hal_core.ir.parser import parse


def import_text(source: str | bytes | os.PathLike[str]) -> Module:
    """Parse and verify tensor IR.

    ``source`` is a path (``str`` or path-like), the program text itself (a ``str`` that holds
    a newline or ``func.func``), or ``bytes`` of UTF-8 text. Errors: :class:`UsageError` for a
    missing or unreadable file, :class:`~hal_core.errors.IRParseError` /
    :class:`~hal_core.errors.VerificationError` for bad programs.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        return parse(_decode(bytes(source), "<bytes>"), source_name="<bytes>")
    if isinstance(source, str) and ("\n" in source or "func.func" in source):
        return parse(source, source_name="<string>")
    if not isinstance(source, (str, os.PathLike)):
        raise UsageError(f"the text importer takes a path, IR text or bytes, found "
                         f"{type(source).__name__}")
    path = os.fspath(source)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise UsageError(f"input file {path!r} does not exist; give the path of a text IR "
                         "file (or the IR text itself)") from None
    except OSError as exc:
        raise UsageError(f"cannot read input file {path!r}: {exc.strerror or exc}") from None
    return parse(_decode(data, path), source_name=path)


def _decode(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{where} is not UTF-8 text (byte {exc.start}: {exc.reason}); the "
                         "text importer reads hal tensor IR text") from None
