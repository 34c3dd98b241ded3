"""``hal compile INPUT --target-backends=vmvx[,...] -o out.halm``.

The input goes through an importer plugin picked by its extension (``--importer`` overrides;
``-`` reads text IR from stdin). ``--iree-hal-target-backends`` is accepted as an alias of
``--target-backends``, and IREE's execution-model spellings (``inline-static``,
``async-internal``, ...) map onto hal's two models. Target-specific options are passed as
``--<target>-<key>=<value>`` (e.g. ``--llvm-cpu-cpu=znver3``) and reach that target's
:class:`~hal_core.compiler.target.TargetOptions` as ``{"<key>": "<value>"}``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hal_core.errors import UsageError

_IREE_MODELS = {"inline-static": "inline", "inline-dynamic": "inline",
                "async-internal": "async", "async-external": "async"}


class _CompileParser(argparse.ArgumentParser):
    """Keeps ``--<target>-<key>=<value>`` flags aside instead of rejecting them."""

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        ns, extra = super().parse_known_args(args, namespace)
        flags, rest = [], []
        for arg in extra:
            if arg.startswith("--") and "=" in arg and not arg.startswith("---"):
                flags.append(arg[2:])
            else:
                rest.append(arg)
        ns.target_flags = list(getattr(ns, "target_flags", None) or []) + flags
        return ns, rest


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "compile", help="compile a model to a .halm module for one or more target backends",
        description="Compile a model (text IR, or any format an importer plugin reads) into a"
        " .halm module with one executable variant per target backend.",
        epilog="Target-specific options: --<target>-<option>=VALUE (e.g. --llvm-cpu-cpu=znver3)"
        " for a target named in --target-backends.")
    parser.__class__ = _CompileParser
    parser.add_argument("input", metavar="INPUT", help="model file ('-' reads text IR from "
                        "stdin)")
    parser.add_argument("--target-backends", "--iree-hal-target-backends",
                        dest="target_backends", metavar="NAMES",
                        help="comma-separated target backends, e.g. vmvx,llvm-cpu "
                        "(see `hal targets list`)")
    parser.add_argument("-o", "--output", metavar="FILE", help="the module file to write")
    parser.add_argument("--execution-model", "--iree-execution-model",
                        dest="execution_model", default="async", metavar="MODEL",
                        help="async (command buffers and semaphores, the default) or "
                        "inline (the host calls kernels directly)")
    parser.add_argument("--dump-ir", metavar="DIR", help="write the IR after each compiler "
                        "stage into DIR")
    parser.add_argument("--importer", metavar="NAME", help="importer to use instead of "
                        "picking one by the input's extension")
    parser.set_defaults(func=run_compile, target_flags=[])


_FLAG_ALIASES = {"vulkan": "vulkan-spirv"}  # flag prefix -> the target it addresses


def _target_options(flags: list[str], targets: list[str]) -> dict[str, dict[str, str]]:
    options: dict[str, dict[str, str]] = {}
    for flag in flags:
        key, value = flag.split("=", 1)
        # IREE spells vulkan-spirv's flags --vulkan-target-env/--vulkan-target-triple.
        key = next((t + key[len(a):] for a, t in _FLAG_ALIASES.items()
                    if t in targets and key.startswith(a + "-")
                    and not key.startswith(t + "-")), key)
        owner = max((t for t in targets if key.startswith(t + "-")), key=len, default=None)
        if owner is None:
            raise UsageError(f"unrecognized option '--{key}'; target-specific options are "
                             f"spelled --<target>-<option>=VALUE for a requested target "
                             f"({', '.join(targets)}); see 'hal compile --help'")
        options.setdefault(owner, {})[key[len(owner) + 1:]] = value
    return options


def run_compile(args: argparse.Namespace) -> int:
    from hal_core.compiler.pipeline import compile, parse_target_list

    if not args.target_backends:
        raise UsageError("no target backend given; pass --target-backends=vmvx (or several, "
                         "comma-separated; `hal targets list` shows the installed ones)")
    if not args.output:
        raise UsageError("no output file given; pass -o out.halm")
    targets = parse_target_list(args.target_backends)
    model = _IREE_MODELS.get(args.execution_model, args.execution_model)
    source: Any = args.input
    if args.input == "-":
        source = sys.stdin.buffer.read()
    to_stdout = args.output == "-"
    module = compile(source, targets, execution_model=model, dump_ir=args.dump_ir,
                     target_options=_target_options(args.target_flags, targets) or None,
                     output=None if to_stdout else args.output,
                     importer=args.importer or ("text" if args.input == "-" else None))
    if to_stdout:
        from hal_core.module.writer import write_module

        write_module(module, sys.stdout.buffer)
    return 0
