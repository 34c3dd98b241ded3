"""``hal plugins list [--json]``."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("plugins", help="list the discovered plugins and their status")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="entry point, module, provenance, API, status")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(func=list_plugins)


def list_plugins(args: argparse.Namespace) -> int:
    from hal_core.cli._output import plugin_json, print_json, print_table
    from hal_core.registry import get_registry

    records = get_registry().plugins()
    if args.json:
        print_json({"plugins": [plugin_json(r) for r in records]})
        return 0
    print_table(["NAME", "SOURCE", "MODULE", "PROVIDED BY", "API", "STATUS"],
                [[r.name, r.source, r.module, r.provenance, r.api_version or "-",
                  r.status if r.error is None else f"{r.status}: {r.error}"] for r in records])
    return 0
