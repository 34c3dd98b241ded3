"""``hal drivers list [--probe] [--json]``."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("drivers", help="list the HAL drivers that plugins provide")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="name, description, provenance and status")
    listing.add_argument("--probe", action="store_true",
                         help="run each driver's availability probe in a subprocess")
    listing.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                         help="time limit for all probes together (default 10)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(func=list_drivers)


def list_drivers(args: argparse.Namespace) -> int:
    from hal_core.cli._output import print_json, print_table, warn
    from hal_core.registry import get_registry

    registry = get_registry()
    entries = registry.drivers()
    probed = {}
    if args.probe:
        usable = [e.name for e in entries if e.error is None]
        probed = registry.probe_many(usable, timeout=args.timeout) if usable else {}
    rows = []
    for entry in entries:
        if entry.error:
            status, reason = "failed", entry.error
        elif entry.name in probed:
            status, reason = probed[entry.name].status, probed[entry.name].reason
        else:
            status, reason = "registered", None
        rows.append({"name": entry.name, "description": entry.info.description,
                     "plugin": entry.plugin.name, "distribution": entry.plugin.distribution,
                     "version": entry.plugin.version, "status": status, "reason": reason})
    problems = registry.problems()
    if args.json:
        print_json({"drivers": rows, "problems": problems})
        return 0
    print_table(["NAME", "DESCRIPTION", "PROVIDED BY", "STATUS"],
                [[r["name"], r["description"], entry.plugin.provenance,
                  r["status"] if r["reason"] is None else f"{r['status']}: {r['reason']}"]
                 for r, entry in zip(rows, entries)])
    for problem in problems:
        warn(problem)
    if not entries:
        warn("no drivers registered; install a driver plugin (e.g. pip install plugins/local)")
    return 0
