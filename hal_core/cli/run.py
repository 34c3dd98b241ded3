"""``hal run``: load a module on a device, call one function, print or save its results.

    hal run --device=local-task --module=out.halm --function=main \\
        --input=2x2xf32=[[1 2][3 4]] --input=@b.npy --output=@out.npy

Inputs and outputs use IREE's tensor syntax (:mod:`hal_core.runtime.io_format`). The spellings
of older IREE docs are accepted too: ``--driver=``, ``--module_file=``, ``--entry_function=``,
``--function_input=``; IREE's old driver names (``dylib``, ``vmvx``, ...) map to the local
drivers with a note. :func:`add_common_arguments` and :func:`prepare_call` are shared with
``hal benchmark``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from hal_core.errors import UsageError

#: IREE's former driver names -> the hal driver that does the same job.
LEGACY_DRIVERS = {
    "dylib": "local-task", "dylib-sync": "local-sync", "llvm-cpu": "local-task",
    "vmvx": "local-task", "vmvx-sync": "local-sync", "cpu": "local-task",
}


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("module_path", nargs="?", metavar="MODULE",
                        help="the .halm module (or use --module)")
    parser.add_argument("--module", "--module_file", "--module-file", dest="module",
                        metavar="FILE", help="the .halm module to load")
    parser.add_argument("--device", "--driver", dest="device", metavar="DEVICE",
                        help="driver name or device URI (default: HAL_DEFAULT_DEVICE or "
                        "local-task)")
    parser.add_argument("--function", "--entry_function", "--entry-function", dest="function",
                        metavar="NAME", help="function to call (default: main, or the only one)")
    parser.add_argument("--input", "--function_input", "--function-input", dest="inputs",
                        action="append", default=[], metavar="VALUE",
                        help="an argument, in order: 2x2xf32=1 2 3 4, 4xf32=[1 2 3 4], "
                        "1x3xf32=0 (splat), @x.npy; repeatable")


def resolve_device(spec: str | None) -> str | None:
    """The device to load on; IREE's old driver names map to hal's (with a note)."""
    if spec is None:
        return None
    from hal_core.registry import get_registry

    name = spec.partition("://")[0]
    if name in LEGACY_DRIVERS:
        registry = get_registry()
        try:
            registry.driver(name)
        except UsageError:
            mapped = LEGACY_DRIVERS[name]
            sys.stderr.write(f"hal: note: '{name}' is IREE's former driver name; using "
                             f"'{mapped}'\n")
            return mapped + spec[len(name):]
    return spec


def prepare_call(args: argparse.Namespace) -> tuple[Any, Any, list[Any]]:
    """Load the module named by ``args`` and parse the inputs: (loaded module, function, inputs)."""
    from hal_core.runtime import load_module
    from hal_core.runtime.io_format import parse_input

    path = args.module or args.module_path
    if args.module and args.module_path:
        raise UsageError(f"give the module once: --module={args.module} or {args.module_path}")
    if not path:
        raise UsageError("no module given; pass --module=FILE.halm (compile one with "
                         "`hal compile MODEL -o FILE.halm`)")
    inputs = [parse_input(text) for text in args.inputs]
    loaded = load_module(path, resolve_device(args.device))
    try:
        fn = loaded[_function_name(loaded, args.function)]
    except BaseException:
        loaded.close()
        raise
    return loaded, fn, inputs


def _function_name(loaded: Any, requested: str | None) -> str:
    names = list(loaded.functions)
    if requested is not None:
        loaded[requested]  # raises with the function list and a did-you-mean
        return requested
    if "main" in names or len(names) == 1:
        return "main" if "main" in names else names[0]
    raise UsageError(f"module {loaded.name!r} has several functions ({', '.join(names)}); choose "
                     f"one with --function=NAME")


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run", help="call a function of a module and print its results",
        description="Load a module on a device, call one function with the given inputs, and "
        "print the results (or write them with --output=@FILE.npy).")
    add_common_arguments(parser)
    parser.add_argument("--output", dest="outputs", action="append", default=[],
                        metavar="TARGET", help="where result i goes, in order: @FILE.npy, "
                        "@FILE.bin (raw bytes) or - (print); unlisted results are printed")
    parser.add_argument("--print-max-elements", type=int, default=1024, metavar="N",
                        help="print at most N elements of a result (default 1024)")
    parser.set_defaults(func=run_run)


def run_run(args: argparse.Namespace) -> int:
    from hal_core.runtime.io_format import format_output, write_output

    if args.print_max_elements < 0:
        raise UsageError(f"--print-max-elements must be >= 0, got {args.print_max_elements}")
    loaded, fn, inputs = prepare_call(args)
    with loaded:
        results = fn(*inputs)
    results = results if isinstance(results, tuple) else (results,)
    if len(args.outputs) > len(results):
        raise UsageError(f"{len(args.outputs)} --output flags given but {fn.name} returns "
                         f"{len(results)} result(s)")
    lines = []
    for i, value in enumerate(results):
        target = args.outputs[i] if i < len(args.outputs) else "-"
        if target == "-":
            lines.append(f"result[{i}]: {format_output(value, max_elements=args.print_max_elements)}")
        else:
            path = write_output(value, target, base_dir=Path.cwd())
            lines.append(f"result[{i}]: written to {path}")
    sys.stdout.write("\n".join(lines) + ("\n" if lines else ""))
    return 0
