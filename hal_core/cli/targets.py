"""``hal targets list [--json]``."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("targets", help="list the compiler target backends")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="targets, the formats they produce, their drivers")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(func=list_targets)


def list_targets(args: argparse.Namespace) -> int:
    from hal_core.cli._output import print_json, print_table, warn
    from hal_core.registry import get_registry

    registry = get_registry()
    entries = registry.targets()
    rows = [{"name": e.name, "description": e.info.description,
             "formats": list(e.info.formats), "drivers": list(e.info.drivers),
             "plugin": e.plugin.name, "distribution": e.plugin.distribution,
             "version": e.plugin.version, "status": "failed" if e.error else "registered",
             "reason": e.error} for e in entries]
    if args.json:
        print_json({"targets": rows, "problems": registry.problems()})
        return 0
    print_table(["NAME", "DESCRIPTION", "FORMATS", "DRIVERS", "PROVIDED BY", "STATUS"],
                [[r["name"], r["description"], ",".join(r["formats"]) or "-",
                  ",".join(r["drivers"]) or "-", e.plugin.provenance,
                  r["status"] if r["reason"] is None else f"failed: {r['reason']}"]
                 for r, e in zip(rows, entries)])
    for problem in registry.problems():
        warn(problem)
    if not entries:
        warn("no target backends registered yet; target plugins (e.g. plugins/vmvx) add them")
    return 0
