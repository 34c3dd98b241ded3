"""The text importer (registered by hal_core.builtin_plugin): a file or bytes to a Module."""

from __future__ import annotations

import os
from collections.abc import Mapping

from hal_core.errors import IRParseError, UsageError
from hal_core.ir.module import Module
from hal_core.ir.parser import parse


def import_text(path_or_bytes: str | os.PathLike[str] | bytes,
                options: Mapping[str, str] | None = None) -> Module:
    """Parse and verify text IR from a file path, or from UTF-8 bytes (no options)."""
    if options:
        names = ", ".join(f"--text-{k}" for k in sorted(options))
        raise UsageError(f"the text importer has no options, got {names}; remove them")
    if isinstance(path_or_bytes, bytes | bytearray | memoryview):
        data, name = bytes(path_or_bytes), "<bytes>"
    else:
        name = os.fspath(path_or_bytes)
        try:
            with open(name, "rb") as f:
                data = f.read()
        except OSError as e:
            raise UsageError(f"cannot read the IR file {name!r}: {e.strerror or e}; check the"
                             " path") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise IRParseError("the file is not UTF-8 text; is it a binary model (then use its"
                           " importer) or a hal module?", line=line, column=column,
                           token=data[e.start:e.start + 1].hex(), source_name=name) from None
    return parse(text, source_name=name)
