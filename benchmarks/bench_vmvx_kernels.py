"""vmvx kernels beside numpy, at the dispatch ABI (no runtime, no command buffers).

Each case is compiled from hand-written kernel IR with the vmvx target, loaded with the vmvx
loader and run through ``LocalExecutable.run`` on numpy uint8 bindings, interleaved with the
numpy reference so that load on the machine hits both alike:

* ``axpy16m``: ``a + b*2`` over 16M float32 (numpy: ``a + b * 2``, a fresh result each call,
  and ``np.multiply(b, 2, out=o); np.add(a, o, out=o)`` into a reused output, as vmvx writes
  into the reused binding here);
* ``matmul1024``: 1024x1024 @ 1024x1024 float32 (``np.matmul`` with the same BLAS);
* ``add4``: one 4-element float32 add, the cost of ``run`` itself (same binding arrays each call
  and fresh slices each call, as a driver that narrows bindings per dispatch passes them).

Whole range in one call (as local-sync does) and split into two tiles on two threads (as
local-task does with two workers). Median over runs; writes benchmarks/results/vmvx_kernels.json.

    python benchmarks/bench_vmvx_kernels.py [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import timeit
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from hal_vmvx.loader import VmvxLoader
from hal_vmvx.target import VmvxTarget

from hal_core.compiler import kernel_ir as K
from hal_core.compiler.target import TargetOptions

RESULTS = Path(__file__).resolve().parent / "results" / "vmvx_kernels.json"
TARGET_RATIO = 1.5


def _ident(op: K.KernelOperand) -> K.MappedOperand:
    return K.MappedOperand(op, K.IndexingMap.identity(len(op.shape)))


def _compile(kernel):
    variant = VmvxTarget().compile(K.KernelExecutable("bench", (kernel,)), TargetOptions())
    return VmvxLoader().load(variant.payload, ()), variant.entry_points[0].workgroup_count[0]


def _axpy(n: int) -> K.GenericKernel:
    f = "float32"
    a, b, o = (K.KernelOperand(i, (n,), f) for i in range(3))
    body = (K.ScalarOp("mul", (K.Input(1), K.Const(2.0, f)), f),
            K.ScalarOp("add", (K.Input(0), K.Result(0)), f))
    return K.GenericKernel("axpy", (n,), ("parallel",), (_ident(a), _ident(b)), (_ident(o),),
                           body, (K.Result(1),))


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _case(reference, exe, count, bindings, pool, runs, check, extra=None):
    def whole():
        exe.run(0, (count, 1, 1), 0, count, bindings, ())

    def two_tiles():
        h = count // 2
        futures = [pool.submit(exe.run, 0, (count, 1, 1), lo, hi, bindings, ())
                   for lo, hi in ((0, h), (h, count))]
        for f in futures:
            f.result()

    whole()
    check()
    extra = extra or {}
    samples = {"numpy": [], **{k: [] for k in extra}, "vmvx_whole": [], "vmvx_two_tiles": []}
    for _ in range(runs):
        samples["numpy"].append(_timed(reference))
        for k, fn in extra.items():
            samples[k].append(_timed(fn))
        samples["vmvx_whole"].append(_timed(whole))
        samples["vmvx_two_tiles"].append(_timed(two_tiles))
    med = {k: statistics.median(v) * 1e3 for k, v in samples.items()}
    out = {"median_ms": med, "workgroups": count,
           "ratio_whole": med["vmvx_whole"] / med["numpy"],
           "ratio_two_tiles": med["vmvx_two_tiles"] / med["numpy"]}
    for k in extra:
        out[f"ratio_whole_to_{k}"] = med["vmvx_whole"] / med[k]
    return out


def _bench_axpy(rng, pool, runs):
    n = 16 * 1024 * 1024
    a, b = rng.random(n, np.float32), rng.random(n, np.float32)
    out = np.zeros(n * 4, np.uint8)
    exe, count = _compile(_axpy(n))
    o = np.empty_like(a)

    def numpy_reused_output():  # no temporary and no fresh output: numpy's best case
        np.multiply(b, 2, out=o)
        np.add(a, o, out=o)

    return _case(lambda: a + b * 2, exe, count, [a.view(np.uint8), b.view(np.uint8), out],
                 pool, runs,
                 lambda: np.testing.assert_array_equal(out.view(np.float32), a + b * 2),
                 {"numpy_out_reused": numpy_reused_output})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    pool = ThreadPoolExecutor(2)
    results = {}

    results["axpy16m"] = _bench_axpy(rng, pool, args.runs)  # frees its 192 MB on return

    m = 1024
    x, y = rng.random((m, m), np.float32), rng.random((m, m), np.float32)
    out = np.zeros(m * m * 4, np.uint8)
    f = "float32"
    exe, count = _compile(K.MatmulKernel("mm", K.KernelOperand(0, (m, m), f),
                                         K.KernelOperand(1, (m, m), f),
                                         K.KernelOperand(2, (m, m), f)))
    results["matmul1024"] = _case(
        lambda: x @ y, exe, count,
        [x.reshape(-1).view(np.uint8), y.reshape(-1).view(np.uint8), out], pool, args.runs,
        lambda: np.testing.assert_allclose(out.view(np.float32).reshape(m, m), x @ y,
                                           rtol=1e-4))

    exe, _ = _compile(K.GenericKernel(
        "add4", (4,), ("parallel",), tuple(_ident(K.KernelOperand(i, (4,), f)) for i in (0, 1)),
        (_ident(K.KernelOperand(2, (4,), f)),),
        (K.ScalarOp("add", (K.Input(0), K.Input(1)), f),), (K.Result(0),)))
    same = [np.zeros(16, np.uint8) for _ in range(3)]
    arena = np.zeros(256, np.uint8)
    v4, o4 = np.ones(4, np.float32), np.empty(4, np.float32)
    calls = 20000
    us = {
        "numpy_add_out": min(timeit.repeat(lambda: np.add(v4, v4, out=o4), number=calls,
                                           repeat=args.runs)) / calls * 1e6,
        "run_same_bindings": min(timeit.repeat(
            lambda: exe.run(0, (1, 1, 1), 0, 1, same, ()), number=calls,
            repeat=args.runs)) / calls * 1e6,
        "run_fresh_slices": min(timeit.repeat(
            lambda: exe.run(0, (1, 1, 1), 0, 1, [arena[0:16], arena[64:80], arena[128:144]], ()),
            number=calls, repeat=args.runs)) / calls * 1e6,
    }
    results["add4"] = {"min_us": us}

    result = {
        "benchmark": "vmvx kernels vs numpy at the dispatch ABI",
        "runs": args.runs,
        "target_ratio": TARGET_RATIO,
        "meets_target": all(results[k]["ratio_whole"] <= TARGET_RATIO
                            for k in ("axpy16m", "matmul1024")),
        "results": results,
        "environment": {"python": platform.python_version(), "numpy": np.__version__,
                        "cpus": os.cpu_count(), "load_average": list(os.getloadavg())},
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    for name in ("axpy16m", "matmul1024"):
        r = results[name]
        med = r["median_ms"]
        print(f"{name:12s} numpy {med['numpy']:7.1f} ms  vmvx whole {med['vmvx_whole']:7.1f} ms "
              f"({r['ratio_whole']:.2f}x)  two tiles {med['vmvx_two_tiles']:7.1f} ms "
              f"({r['ratio_two_tiles']:.2f}x)")
        if "numpy_out_reused" in med:
            print(f"{'':12s} numpy into a reused output {med['numpy_out_reused']:7.1f} ms "
                  f"(vmvx whole {r['ratio_whole_to_numpy_out_reused']:.2f}x of it)")
    print("add4 (us): " + ", ".join(f"{k} {v:.2f}" for k, v in us.items()))
    print(f"target <= {TARGET_RATIO}x numpy: {'met' if result['meets_target'] else 'NOT met'}; "
          f"written to {args.output}")


if __name__ == "__main__":
    main()
