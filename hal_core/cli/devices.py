"""``hal devices list [DRIVER] [--json]`` and ``hal devices dump [DRIVER] [--json]``.

Devices are enumerated in one subprocess per driver (see :mod:`hal_core._probe`), so a driver
that crashes or hangs is reported and the others still list. Naming a driver makes its failure
an error.
"""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("devices", help="list devices and dump their properties")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, help_text in (("list", "device URIs of every (or one) driver"),
                              ("dump", "each device's properties, formats and features")):
        sub = actions.add_parser(action, help=help_text)
        sub.add_argument("driver", nargs="?", metavar="DRIVER", help="only this driver")
        sub.add_argument("--timeout", type=float, default=20.0, metavar="SECONDS",
                         help="time limit for enumerating all drivers (default 20)")
        sub.add_argument("--json", action="store_true", help="print JSON")
        if action == "dump":
            sub.add_argument("--target-env", action="store_true",
                             help="print only each device's target environment attribute (the "
                                  "'target_env' property, e.g. vulkan's '#vk.target_env<...>' "
                                  "for --vulkan-target-env)")
        sub.set_defaults(func=run_devices)


def run_devices(args: argparse.Namespace) -> int:
    from hal_core.cli._output import print_json, print_table, warn
    from hal_core.errors import DeviceUnavailableError
    from hal_core.registry import get_registry

    registry = get_registry()
    what = "devices" if args.action == "list" else "dump"
    if args.driver:
        entry = registry.driver(args.driver)  # unknown or clashing names are errors here
        result = registry.probe(args.driver, timeout=args.timeout, what=what)
        if result.status != "available":
            raise DeviceUnavailableError(f"driver '{args.driver}' from "
                                         f"{entry.plugin.describe()} {result.describe()}")
        results = [result]
        warnings: list[str] = []
    else:
        warnings = registry.problems()
        names = [e.name for e in registry.drivers() if e.error is None]
        by_name = registry.probe_many(names, timeout=args.timeout, what=what) if names else {}
        results = list(by_name.values())
        warnings += [f"driver '{r.driver}' {r.describe()}; its devices are not listed"
                     for r in results if r.status != "available"]
        results = [r for r in results if r.status == "available"]
    devices = [{"driver": r.driver, **device} for r in results for device in r.devices]
    if getattr(args, "target_env", False):
        return _print_target_envs(devices, warnings, args.json)
    if args.json:
        print_json({"devices": devices, "problems": warnings})
    elif what == "devices":
        print_table(["DRIVER", "URI", "NAME"],
                    [[d["driver"], d["uri"], d["name"]] for d in devices])
    else:
        _print_dump(devices)
    for message in [] if args.json else warnings:
        warn(message)
    return 0


def _print_target_envs(devices: list[dict[str, Any]], warnings: list[str], as_json: bool) -> int:
    import sys

    from hal_core.cli._output import print_json, warn

    found = [(d["uri"], d.get("properties", {}).get("target_env")) for d in devices]
    missing = [uri for uri, env in found if not env]
    found = [(uri, env) for uri, env in found if env]
    if as_json:
        print_json({"target_envs": dict(found), "problems": warnings})
    else:
        for uri, env in found:
            if len(found) > 1:
                sys.stdout.write(f"# {uri}\n")
            sys.stdout.write(f"{env}\n")
        for message in warnings:
            warn(message)
    for uri in missing:
        warn(f"device {uri} reports no target environment (no 'target_env' property)")
    return 0 if found else 1


def _print_dump(devices: list[dict[str, Any]]) -> None:
    import sys
    import textwrap

    for i, device in enumerate(devices):
        lines = [f"{device['uri']}  ({device['name']}, driver {device['driver']})"]
        for key, value in sorted(device.get("properties", {}).items()):
            if isinstance(value, (list, tuple)):
                value = ", ".join(str(v) for v in value) or "(none)"
            lines.append(f"  {key}: {value}")
        for key in ("formats", "features"):
            text = ", ".join(device.get(key, ())) or "(none)"
            lines.append(textwrap.fill(text, width=100, initial_indent=f"  {key}: ",
                                       subsequent_indent=" " * (len(key) + 4)))
        sys.stdout.write(("\n" if i else "") + "\n".join(lines) + "\n")
