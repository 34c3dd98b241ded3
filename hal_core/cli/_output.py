"""Plain-text tables and JSON for the listing commands (the only place that prints)."""

from __future__ import annotations

import json
import sys
from typing import Any


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    """Columns aligned on their widest cell; the last column is not padded."""
    cells = [headers] + [[" ".join(str(c).split()) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        padded = [cell.ljust(width) for cell, width in zip(row[:-1], widths)] + [row[-1]]
        sys.stdout.write("  ".join(padded).rstrip() + "\n")


def warn(message: str) -> None:
    sys.stderr.write(f"hal: warning: {' '.join(message.split())}\n")


def plugin_json(record: Any) -> dict[str, Any]:
    return {"name": record.name, "module": record.module, "distribution": record.distribution,
            "version": record.version, "api_version": record.api_version,
            "source": record.source, "status": record.status, "error": record.error}
