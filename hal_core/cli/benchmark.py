"""``hal benchmark``: time calls of one function (median and p90 per call).

Same flags as ``hal run`` plus ``--repetitions`` (timed calls) and ``--min-time`` (keep
calling until this many seconds passed). Each call is timed on its own with
``time.perf_counter``, from Python, so the figures include everything a Python caller pays:
argument checks, binding, submission, waiting and output allocation.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from hal_core.cli.run import add_common_arguments, prepare_call
from hal_core.errors import UsageError


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "benchmark", help="time calls of a module function (median and p90)",
        description="Call one function repeatedly and report the time per call.")
    add_common_arguments(parser)
    parser.add_argument("--repetitions", type=int, default=None,
                        metavar="N", help="timed calls (at least; default: as many as "
                        "--min-time allows, at least 10)")
    parser.add_argument("--min-time", type=float, default=1.0,
                        metavar="SECONDS", help="keep calling for at least this long "
                        "(default 1.0; 0 with --repetitions for an exact count)")
    parser.add_argument("--warmup", type=int, default=3, metavar="N",
                        help="untimed calls first (default 3)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run_benchmark)


def measure(fn: Any, inputs: list[Any], repetitions: int | None, min_time: float,
            warmup: int) -> list[float]:
    """Seconds per call of ``fn(*inputs)``."""
    for _ in range(warmup):
        fn(*inputs)
    wanted = repetitions if repetitions is not None else 10
    times: list[float] = []
    clock = time.perf_counter
    start = clock()
    while len(times) < wanted or clock() - start < min_time:
        t0 = clock()
        fn(*inputs)
        times.append(clock() - t0)
    return times


def summarize(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    n = len(ordered)

    def at(q: float) -> float:
        return ordered[min(n - 1, int(q * n))]

    return {"calls": n, "median_us": at(0.5) * 1e6, "p90_us": at(0.9) * 1e6,
            "min_us": ordered[0] * 1e6, "mean_us": sum(ordered) / n * 1e6}


def run_benchmark(args: argparse.Namespace) -> int:
    if args.repetitions is not None and args.repetitions < 1:
        raise UsageError(f"--repetitions must be at least 1, got {args.repetitions}")
    if args.min_time < 0 or args.warmup < 0:
        raise UsageError("--min-time and --warmup must not be negative")
    loaded, fn, inputs = prepare_call(args)
    with loaded:
        times = measure(fn, inputs, args.repetitions, args.min_time, args.warmup)
        device = getattr(loaded.device, "id", str(loaded.device))
        model = loaded.execution_model.name.lower()
    stats = summarize(times)
    if args.json:
        from hal_core.cli._output import print_json

        print_json({"module": loaded.name, "function": fn.name, "device": device,
                    "execution_model": model, **stats})
        return 0
    sys.stdout.write(
        f"{loaded.name}.{fn.name} on {device} ({model}): {stats['calls']} calls, "
        f"median {_us(stats['median_us'])}, p90 {_us(stats['p90_us'])}, "
        f"min {_us(stats['min_us'])}, mean {_us(stats['mean_us'])} per call\n")
    return 0


def _us(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:.3f} s"
    if value >= 1e3:
        return f"{value / 1e3:.3f} ms"
    return f"{value:.1f} us"
