"""Per-call cost of a tiny function (4-element float32 add) called from Python, side by side.

Measured in one run, interleaved in rounds (the machine is shared, so rounds spread the noise
over every contender):

* hal, async model (reusable command buffer + timeline semaphore) on local-sync and local-task;
* hal, inline model (direct kernel calls, ``--execution-model=inline``);
* numpy's ``a + b``: the floor;
* IREE's Python binding on the same program (``arith.addf`` on ``tensor<4xf32>``) compiled
  for vmvx and llvm-cpu, on local-sync and local-task, timed both as ``f(a, b)`` (returns a
  device array) and ``f(a, b).to_host()`` (a numpy array, like hal's result). IREE runs in a
  child process of a separate virtual environment (iree-base-compiler and iree-base-runtime are
  never dependencies of hal): ``--setup-iree`` creates it.

Every call is timed on its own with ``time.perf_counter``; figures are the median and p90.
Writes benchmarks/results/call_overhead.json.

    python benchmarks/bench_call_overhead.py [--setup-iree] [--calls 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "call_overhead.json"
IREE_VENV = Path(os.environ.get("HAL_BENCH_IREE_VENV", "/tmp/iree-bench-venv"))
TARGET_US = 50.0

HAL_IR = """func.func @main(%a: tensor<4xf32>, %b: tensor<4xf32>) -> tensor<4xf32> {
  %0 = add %a, %b : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}
"""
IREE_MLIR = """func.func @main(%a: tensor<4xf32>, %b: tensor<4xf32>) -> tensor<4xf32> {
  %0 = arith.addf %a, %b : tensor<4xf32>
  return %0 : tensor<4xf32>
}
"""


def time_calls(call, n: int) -> list[float]:
    clock = time.perf_counter
    times = []
    for _ in range(n):
        t0 = clock()
        call()
        times.append(clock() - t0)
    return times


def summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {"median_us": statistics.median(ordered) * 1e6,
            "p90_us": ordered[int(0.9 * (len(ordered) - 1))] * 1e6,
            "min_us": ordered[0] * 1e6, "calls": len(ordered)}


def run_rounds(contenders: dict, calls: int, rounds: int) -> dict[str, dict[str, float]]:
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for call in contenders.values():
        time_calls(call, min(calls, 200))  # warm up
    for _ in range(rounds):
        for name, call in contenders.items():
            samples[name] += time_calls(call, calls)
    return {name: summary(times) for name, times in samples.items()}


# -- IREE (child process, in its own virtual environment) --------------------------------------

def iree_child(calls: int, rounds: int) -> None:
    """Runs inside the IREE venv: print JSON figures for every backend x driver."""
    import iree.compiler as ireec
    import iree.runtime as ireert
    import numpy as np

    a = np.arange(4, dtype=np.float32)
    b = np.ones(4, np.float32)
    contenders = {}
    keep = []
    for backend, extra in (("vmvx", []), ("llvm-cpu", ["--iree-llvmcpu-target-cpu=host"])):
        vmfb = ireec.compile_str(IREE_MLIR, target_backends=[backend], extra_args=extra)
        for driver in ("local-sync", "local-task"):
            ctx = ireert.SystemContext(config=ireert.Config(driver))
            ctx.add_vm_module(ireert.VmModule.copy_buffer(ctx.instance, vmfb))
            f = ctx.modules.module["main"]
            assert np.array_equal(f(a, b).to_host(), a + b)
            keep.append(ctx)
            contenders[f"iree {backend} {driver}"] = lambda f=f: f(a, b)
            contenders[f"iree {backend} {driver} +to_host"] = lambda f=f: f(a, b).to_host()
    figures = run_rounds(contenders, calls, rounds)
    print(json.dumps({"version": getattr(ireert, "__version__", None) or _iree_version(),
                      "figures": figures}))


def _iree_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("iree-base-runtime")
    except Exception:  # noqa: BLE001 - informational only
        return None


def setup_iree() -> None:
    subprocess.run([sys.executable, "-m", "venv", str(IREE_VENV)], check=True)
    subprocess.run([str(IREE_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet",
                    "iree-base-compiler", "iree-base-runtime", "numpy"], check=True)


def run_iree(calls: int, rounds: int) -> dict:
    python = IREE_VENV / "bin" / "python"
    if not python.exists():
        return {"skipped": f"no IREE environment at {IREE_VENV}; run with --setup-iree"}
    proc = subprocess.run([str(python), __file__, "--iree-child", "--calls", str(calls),
                           "--rounds", str(rounds)], capture_output=True, text=True,
                          check=False, timeout=900)
    if proc.returncode != 0:
        return {"skipped": f"IREE child failed: {proc.stderr.strip()[-800:]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- hal -------------------------------------------------------------------------------------

def hal_contenders() -> tuple[dict, list, str]:
    import numpy as np
    from _modules import axpy_by_hand, build

    from hal_core.runtime import load_module

    a = np.arange(4, dtype=np.float32)
    b = np.ones(4, np.float32)
    async_module, source = build(HAL_IR, lambda m: axpy_by_hand(4, None, m), "async")
    inline_module, _ = build(HAL_IR, lambda m: axpy_by_hand(4, None, m), "inline")
    loaded = [load_module(async_module, "local-sync"), load_module(async_module, "local-task"),
              load_module(inline_module, "local-sync")]
    for m in loaded:
        assert np.array_equal(m.main(a, b), a + b)
    sync, task, inline = (m.main for m in loaded)
    contenders = {
        "numpy a+b": lambda: a + b,
        "hal async local-sync": lambda: sync(a, b),
        "hal async local-task": lambda: task(a, b),
        "hal inline": lambda: inline(a, b),
    }
    return contenders, loaded, source


def environment() -> dict:
    import numpy as np

    return {"python": platform.python_version(), "numpy": np.__version__,
            "cpus": os.cpu_count(), "load_average": list(os.getloadavg()),
            "machine": platform.machine()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="timed calls per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--setup-iree", action="store_true",
                        help=f"create the IREE environment at {IREE_VENV} first")
    parser.add_argument("--iree-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.iree_child:
        iree_child(args.calls, args.rounds)
        return
    if args.setup_iree:
        setup_iree()
    sys.path.insert(0, str(HERE))
    contenders, loaded, source = hal_contenders()
    hal = run_rounds(contenders, args.calls, args.rounds)
    iree = run_iree(args.calls, args.rounds)
    for m in loaded:
        m.close()
    sync_us = hal["hal async local-sync"]["median_us"]
    result = {
        "benchmark": "tiny call (4-element f32 add) from Python, per call",
        "module_source": source,
        "target": {"local_sync_median_us_at_most": TARGET_US, "inline_below_local_sync": True},
        "meets_target": sync_us <= TARGET_US and hal["hal inline"]["median_us"] < sync_us,
        "hal": hal,
        "iree": iree,
        "environment": environment(),
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    rows = list(hal.items()) + list(iree.get("figures", {}).items())
    for name, fig in rows:
        print(f"{name:34s} median {fig['median_us']:8.2f} us   p90 {fig['p90_us']:8.2f} us")
    if "skipped" in iree:
        print(f"IREE: {iree['skipped']}")
    print(f"target: local-sync <= {TARGET_US} us and inline lower: "
          f"{'met' if result['meets_target'] else 'NOT met'}; wrote {RESULTS}")


if __name__ == "__main__":
    main()
