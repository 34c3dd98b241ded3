"""``hal dump MODULE [--json]``: what a module file holds.

Functions (signatures, host ops, transient bytes), executables with every variant (target,
format, required features, payload size, entry points), constants, sizes and the peak
transient bytes, from :func:`hal_core.module.describe.describe`.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "dump", help="show the functions, executables, variants and constants of a module",
        description="Verify a .halm module file and summarise what it holds.")
    parser.add_argument("module_path", nargs="?", metavar="MODULE", help="the .halm file")
    parser.add_argument("--module", "--module_file", dest="module", metavar="FILE",
                        help="the .halm file (instead of MODULE)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run_dump)


def run_dump(args: argparse.Namespace) -> int:
    from hal_core.errors import UsageError
    from hal_core.module.describe import describe
    from hal_core.module.reader import load_module_file

    path = args.module or args.module_path
    if not path or (args.module and args.module_path):
        raise UsageError("give one module file: hal dump FILE.halm")
    module = load_module_file(path)
    info = describe(module, file_size=os.path.getsize(path))
    if args.json:
        from hal_core.cli._output import print_json

        print_json(info)
    else:
        sys.stdout.write("\n".join(text_lines(info)) + "\n")
    return 0


def _size(n: int) -> str:
    return f"{n} bytes" if n < 10 * 1024 else f"{n} bytes ({n / 1024:.1f} KiB)"


def text_lines(info: dict[str, Any]) -> list[str]:
    lines = [(f"module {info['name']!r}: format version {info['format_version']}, "
              f"{info['execution_model']} execution model, {_size(info['file_bytes'])}")]
    lines.append(f"functions ({len(info['functions'])}):")
    for f in info["functions"]:
        ops = ", ".join(f"{n} {k}" for k, n in f["host_ops"].items() if n) or "no host ops"
        lines.append(f"  {f['name']}{f['signature'][f['signature'].index('('):]}")
        lines.append(f"    host program: {ops}; transient {_size(f['transient_bytes'])}")
    lines.append(f"executables ({len(info['executables'])}):")
    for i, exe in enumerate(info["executables"]):
        lines.append(f"  [{i}] {exe['name']}")
        for v, var in enumerate(exe["variants"]):
            requires = ", ".join(var["features"]) or "none"
            lines.append(f"    variant {v}: format {var['format']} (target "
                         f"{var['target_backend']}), requires: {requires}, payload "
                         f"{_size(var['payload_bytes'])}")
            for e, ep in enumerate(var["entry_points"]):
                count = "x".join(map(str, ep["workgroup_count"]))
                size = "x".join(map(str, ep["workgroup_size"]))
                extra = "".join(
                    [f", scratch {_size(ep['scratch_bytes'])}" if ep.get("scratch_bytes") else ""]
                    + [f", packs binding {p['binding']} at load with entry {p['entry_point']} "
                       f"({_size(p['packed_bytes'])})" for p in ep.get("constant_packs", ())])
                lines.append(f"      entry {e} {ep['name']}: workgroups {count}, workgroup size "
                             f"{size}, {ep['binding_count']} bindings, {ep['constant_count']} "
                             f"push constants{extra}")
    lines.append(f"constants ({len(info['constants'])}, {_size(info['constant_bytes'])}):")
    lines += [f"  [{i}] {c['name']}: {_size(c['bytes'])}" for i, c in enumerate(info["constants"])]
    lines.append(f"peak transient bytes: {info['peak_transient_bytes']}")
    for key, value in sorted(info.get("metadata", {}).items()):
        lines.append(f"metadata {key}: {value}")
    return lines
