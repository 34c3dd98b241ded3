"""``hal compile INPUT --target-backends=vmvx[,...] -o out.halm``.

The input goes through an importer plugin picked by its extension (``--importer`` overrides;
``-`` reads text IR from stdin). ``--iree-hal-target-backends`` is accepted as an alias of
``--target-backends``, and IREE's execution-model spellings (``inline-static``,
``async-internal``, ...) map onto hal's two models. Target-specific options are passed as
``--<target>-<key>=<value>`` (e.g. ``--llvm-cpu-cpu=znver3``) and reach that target's
:class:`~hal_core.compiler.target.TargetOptions` as ``{"<key>": "<value>"}``; options of the
importer in use are ``--<importer>-<key>=<value>`` (e.g. ``--onnx-input-shape=x:1x3x224x224``)
and reach its factory as ``{"<key>": "<value>"}``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from hal_core.cli import _Parser
from hal_core.errors import UsageError

_IREE_MODELS = {"inline-static": "inline", "inline-dynamic": "inline",
                "async-internal": "async", "async-external": "async"}


class _CompileParser(_Parser):
    """Keeps ``--<target>-<key>=<value>`` flags aside instead of rejecting them (and, as every
    hal parser, reports other errors as one line, not a usage block)."""

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
        " .halm module: one executable per kernel, with the variants each target backend"
        " makes of it (in --target-backends order; a target may decline a kernel another"
        " handles).",
        epilog="Plugin options: --<target>-<option>=VALUE (e.g. --llvm-cpu-cpu=znver3) for a"
        " target named in --target-backends, --<importer>-<option>=VALUE (e.g."
        " --onnx-input-shape=x:1x3x224x224) for the importer that reads INPUT.")
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
    parser.add_argument("--timings", action="store_true", help="print the time spent in each "
                        "compiler phase (to stderr)")
    parser.add_argument("--no-cache", action="store_true", help="bypass on-disk caches of "
                        "compiled code (as HAL_NO_CACHE=1)")
    add_progress_arguments(parser)
    parser.set_defaults(func=run_compile, target_flags=[])


def add_progress_arguments(parser: argparse.ArgumentParser) -> None:
    """``--progress`` / ``--no-progress``: the compile progress bar on stderr, drawn by default
    when stderr is a terminal and the compile lasts (:mod:`hal_core.cli._progress`)."""
    bar = parser.add_mutually_exclusive_group()
    bar.add_argument("--progress", dest="progress", action="store_const", const=True,
                     help="draw the compile progress bar even if stderr is not a terminal")
    bar.add_argument("--no-progress", dest="progress", action="store_const", const=False,
                     help="never draw it")
    parser.set_defaults(progress=None)


#: IREE's former target backend names -> the hal target that produces the same code.
LEGACY_TARGETS = {"dylib-llvm-aot": "llvm-cpu"}
#: IREE's spellings of target option prefixes (``--iree-llvmcpu-target-cpu=host``).
OPTION_PREFIXES = {"iree-llvmcpu-": "llvm-cpu-", "llvmcpu-": "llvm-cpu-",
                   "iree-vulkan-": "vulkan-spirv-"}
#: Short flag prefixes -> the target they address (IREE spells vulkan-spirv's flags
#: --vulkan-target-env / --vulkan-target-triple).
_FLAG_ALIASES = {"vulkan": "vulkan-spirv"}


def _plugin_options(flags: list[str], targets: list[str], importer: str | None
                    ) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """``--<owner>-<key>=VALUE`` flags routed by the longest owner name that prefixes them:
    (options per requested target, options of the importer in use)."""
    options: dict[str, dict[str, str]] = {}
    owners = targets + ([importer] if importer else [])
    for flag in flags:
        key, value = flag.split("=", 1)
        for prefix, ours in OPTION_PREFIXES.items():
            if key.startswith(prefix):
                key = ours + key[len(prefix):]
                break
        key = next((t + key[len(a):] for a, t in _FLAG_ALIASES.items()
                    if t in targets and key.startswith(a + "-")
                    and not key.startswith(t + "-")), key)
        owner = max((t for t in owners if key.startswith(t + "-")), key=len, default=None)
        if owner is None:
            used = f" or --<importer>-<option>=VALUE for the importer in use ({importer})" \
                if importer else ""
            raise UsageError(f"unrecognized option '--{key}'; plugin options are spelled "
                             f"--<target>-<option>=VALUE for a requested target "
                             f"({', '.join(targets)}){used}; see 'hal compile --help'")
        options.setdefault(owner, {})[key[len(owner) + 1:]] = value
    importer_options = options.pop(importer, {}) if importer and importer not in targets \
        else {}
    return options, importer_options


def run_compile(args: argparse.Namespace) -> int:
    from hal_core.compiler.pipeline import compile, importer_name, parse_target_list

    if not args.target_backends:
        raise UsageError("no target backend given; pass --target-backends=vmvx (or several, "
                         "comma-separated; `hal targets list` shows the installed ones)")
    if not args.output:
        raise UsageError("no output file given; pass -o out.halm")
    targets = parse_target_list(args.target_backends)
    for i, name in enumerate(targets):
        if name in LEGACY_TARGETS:
            sys.stderr.write(f"hal: note: '{name}' is IREE's former target name (deprecated); "
                             f"using '{LEGACY_TARGETS[name]}'\n")
            targets[i] = LEGACY_TARGETS[name]
    model = _IREE_MODELS.get(args.execution_model, args.execution_model)
    source: Any = args.input
    if args.input == "-":
        source = sys.stdin.buffer.read()
    to_stdout = args.output == "-"
    importer = args.importer or ("text" if args.input == "-" else None)
    target_options, importer_options = _plugin_options(
        args.target_flags, targets, importer_name(source, importer))
    if args.no_cache:
        os.environ["HAL_NO_CACHE"] = "1"
    timings: dict[str, float] | None = {} if args.timings else None
    from hal_core.cli._progress import Bar

    t0 = time.perf_counter()
    with Bar(f"compiling {os.path.basename(args.input)}", sys.stderr,
             force=args.progress) as bar:
        module = compile(source, targets, execution_model=model, dump_ir=args.dump_ir,
                         timings=timings, target_options=target_options or None,
                         output=None if to_stdout else args.output, importer=importer,
                         importer_options=importer_options or None,
                         progress=bar if bar.enabled else None)
    if to_stdout:
        from hal_core.module.writer import write_module

        write_module(module, sys.stdout.buffer)
    if timings is not None:
        total = time.perf_counter() - t0
        width = max(len(p) for p in [*timings, "total"])
        lines = [f"{p:<{width}}  {t * 1e3:9.1f} ms" for p, t in timings.items()]
        lines.append(f"{'total':<{width}}  {total * 1e3:9.1f} ms")
        sys.stderr.write("\n".join(lines) + "\n")
    return 0
