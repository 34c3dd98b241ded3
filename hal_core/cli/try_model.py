"""``hal try MODEL``: compile a model for every target, run it on every device, compare.

    hal try squeezenet                      # a short name: the onnx package's light models
    hal try model.onnx --target-backends=llvm-cpu,vmvx --drivers=local-task

Prints what was run (weights, inputs, reference) and a table: driver, device URI, target (the
target backends of the variants the device chose), compile time, median latency, calls timed,
maximum absolute and relative error against the reference. A driver that is missing or fails
is a row with its reason. The work is :func:`hal_core.sweep.sweep`; a progress bar follows the
compiles on stderr when it is a terminal (``--progress`` forces it, ``--no-progress`` hides it).
Exit status: 0, 1 when a compile or a run failed or an error exceeds ``--tolerance``, 2 for a
wrong command line or model name.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hal_core.cli.compile import _CompileParser, add_progress_arguments
from hal_core.errors import UsageError


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "try", help="compile a model for every target, run it on every driver, compare",
        description="Compile a model for every installed target backend, run it on every "
        "available device, and print a table of driver, device, target, compile time, median "
        "latency and maximum error against a reference (the importer's reference runtime, "
        "onnxruntime for ONNX, when installed; else the numpy evaluation of the imported "
        "tensor IR).",
        epilog="Plugin options as for hal compile: --<target>-<option>=VALUE, "
        "--<importer>-<option>=VALUE.")
    parser.__class__ = _CompileParser
    parser.add_argument("model", metavar="MODEL", help="a model file, or a short name of an "
                        "example model (e.g. squeezenet, resnet50: the onnx package's light "
                        "models)")
    parser.add_argument("--target-backends", dest="targets", metavar="NAMES",
                        help="comma-separated targets (default: every installed one)")
    parser.add_argument("--drivers", metavar="NAMES", help="comma-separated drivers "
                        "(default: every registered one; every device of each is tried)")
    parser.add_argument("--function", metavar="NAME", help="function to run (default: main, "
                        "or the only one)")
    weights = parser.add_mutually_exclusive_group()
    weights.add_argument("--random-weights", dest="weights", action="store_const",
                         const="random", help="replace splat weights (one value repeated) "
                         "by seeded random ones (default: when the model has any)")
    weights.add_argument("--shipped-weights", dest="weights", action="store_const",
                         const="shipped", help="keep the model's weights as they are")
    parser.add_argument("--reference", choices=("auto", "ir"), default="auto",
                        help="auto: the importer's reference runtime when installed, else "
                        "ir: the numpy evaluation of the imported tensor IR")
    parser.add_argument("--seed", type=int, default=0, help="seed of the inputs and random "
                        "weights (default 0)")
    parser.add_argument("--repetitions", type=int, default=10, metavar="N",
                        help="timed calls per row (default 10)")
    parser.add_argument("--warmup", type=int, default=1, metavar="N",
                        help="untimed calls first (default 1)")
    parser.add_argument("--max-time", type=float, default=2.0, metavar="SECONDS",
                        help="stop timing a row after this long (at least one call; "
                        "default 2)")
    parser.add_argument("--tolerance", type=float, default=1e-4, metavar="REL",
                        help="largest relative error that passes (default 1e-4)")
    parser.add_argument("--importer", metavar="NAME", help="importer to use instead of "
                        "picking one by the model's extension")
    add_progress_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run_try, target_flags=[], weights="auto")


class _Bars:
    """One :class:`~hal_core.cli._progress.Bar` per compile, replaced as the target changes."""

    def __init__(self, model: str, force: bool | None) -> None:
        self.model, self.force = model, force
        self.target: str | None = None
        self.bar: Any = None

    def __call__(self, target: str, report: Any) -> None:
        from hal_core.cli._progress import Bar

        if target != self.target:
            self.close()
            label = f"compiling {self.model} for {target}" if target else \
                f"importing {self.model}"
            self.bar, self.target = Bar(label, sys.stderr, force=self.force), target
        self.bar(report)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_try(args: argparse.Namespace) -> int:
    from hal_core.cli.compile import _plugin_options
    from hal_core.compiler.pipeline import importer_name, parse_target_list
    from hal_core.sweep import find_model, installed_targets, sweep

    if args.tolerance < 0:
        raise UsageError(f"--tolerance must not be negative, got {args.tolerance}")
    path, display = find_model(args.model)
    targets = parse_target_list(args.targets) if args.targets else installed_targets()
    drivers = [d.strip() for d in args.drivers.split(",") if d.strip()] \
        if args.drivers else None
    if drivers is not None and not drivers:
        raise UsageError("--drivers is empty; name drivers, e.g. --drivers=local-task")
    target_options, importer_options = _plugin_options(
        args.target_flags, targets, importer_name(path, args.importer))
    bars = _Bars(display, args.progress)
    try:
        result = sweep(args.model, targets=targets, drivers=drivers, function=args.function,
                       weights=args.weights, reference=args.reference, seed=args.seed,
                       repetitions=args.repetitions, warmup=args.warmup,
                       max_time=args.max_time, importer=args.importer,
                       importer_options=importer_options or None,
                       target_options=target_options or None, progress=bars)
    finally:
        bars.close()
    failed = [r for r in result.rows if r.status == "failed" or
              (r.max_rel_error is not None and r.max_rel_error > args.tolerance)]
    if args.json:
        import dataclasses

        from hal_core.cli._output import print_json

        data = dataclasses.asdict(result)
        data["tolerance"], data["passed"] = args.tolerance, not failed
        print_json(data)
    else:
        _print(result, args.tolerance, args.warmup)
    return 1 if failed else 0


def _print(result: Any, tolerance: float, warmup: int) -> None:
    from hal_core.cli._output import print_table

    out = sys.stdout
    out.write(f"model:     {result.model} ({result.path}), function {result.function}, "
              f"imported in {_seconds(result.import_s)}\n")
    out.write(f"weights:   {result.weights}\n")
    out.write(f"inputs:    {result.inputs}\n")
    out.write(f"reference: {result.reference}\n")
    out.write(f"LATENCY is the median of CALLS timed calls after {warmup} warm-up; MAX ABS ERR "
              f"is max |hal - reference|, MAX REL ERR that over max |reference| (pass: <= "
              f"{tolerance:g})\n\n")
    rows = []
    for r in result.rows:
        note = r.problem or ("" if r.max_rel_error is None or r.max_rel_error <= tolerance
                             else f"FAIL: relative error above {tolerance:g}")
        rows.append([r.driver or "-", r.device or "-", r.chosen or r.target or "-",
                     _seconds(r.compile_s), _seconds(r.latency_s), str(r.calls or "-"),
                     _error(r.max_abs_error), _error(r.max_rel_error), note or ""])
    print_table(["DRIVER", "DEVICE", "TARGET", "COMPILE", "LATENCY", "CALLS", "MAX ABS ERR",
                 "MAX REL ERR", "NOTE"], rows)


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 1:
        return f"{value:.2f} s"
    if value >= 1e-3:
        return f"{value * 1e3:.2f} ms"
    return f"{value * 1e6:.1f} us"


def _error(value: float | None) -> str:
    return "-" if value is None else f"{value:.1e}"
