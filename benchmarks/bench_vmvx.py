"""vmvx through the whole runtime vs numpy, side by side in one run.

* ``axpy16m``: ``a + b*2`` over 16M float32 (numpy: ``a + b * 2``);
* ``matmul1024``: a 1024x1024 by 1024x1024 float32 matmul (numpy: ``a @ b``).

Each program is compiled for vmvx (``hal_core.compile``; hand-built kernel IR if the compiler
is missing) and called through ``load_module(...).main`` on local-task and local-sync, so the
figures include argument binding, submission, waiting and a fresh output per call, as numpy's
include allocating its result. Contenders are interleaved in rounds; figures are medians.

For axpy the arguments are timed twice: as numpy allocates them (large numpy arrays start 16
bytes past a 64-byte boundary, so unless the executable declares a smaller
``binding_alignment`` the runtime copies them into aligned staging memory), and 64-byte aligned
(bound in place). Target: hal / numpy <= 1.5 for both programs.
Writes benchmarks/results/vmvx.json.

    python benchmarks/bench_vmvx.py [--rounds 5] [--iree]

``--iree`` also times IREE's own vmvx on the matmul (one call; it takes tens of seconds) in
the environment that ``bench_call_overhead.py --setup-iree`` creates.
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
RESULTS = HERE / "results" / "vmvx.json"
IREE_VENV = Path(os.environ.get("HAL_BENCH_IREE_VENV", "/tmp/iree-bench-venv"))
TARGET_RATIO = 1.5
N = 16 * 1024 * 1024
M = 1024

AXPY_IR = f"""func.func @main(%a: tensor<{N}xf32>, %b: tensor<{N}xf32>) -> tensor<{N}xf32> {{
  %two = constant dense<2.0> : tensor<f32>
  %0 = mul %b, %two : (tensor<{N}xf32>, tensor<f32>) -> tensor<{N}xf32>
  %1 = add %a, %0 : (tensor<{N}xf32>, tensor<{N}xf32>) -> tensor<{N}xf32>
  return %1 : tensor<{N}xf32>
}}
"""
MATMUL_IR = f"""func.func @main(%a: tensor<{M}x{M}xf32>, %b: tensor<{M}x{M}xf32>) -> tensor<{M}x{M}xf32> {{
  %0 = matmul %a, %b : (tensor<{M}x{M}xf32>, tensor<{M}x{M}xf32>) -> tensor<{M}x{M}xf32>
  return %0 : tensor<{M}x{M}xf32>
}}
"""
IREE_MATMUL = f"""func.func @main(%a: tensor<{M}x{M}xf32>, %b: tensor<{M}x{M}xf32>) -> tensor<{M}x{M}xf32> {{
  %z = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<{M}x{M}xf32>
  %f = linalg.fill ins(%z : f32) outs(%e : tensor<{M}x{M}xf32>) -> tensor<{M}x{M}xf32>
  %r = linalg.matmul ins(%a, %b : tensor<{M}x{M}xf32>, tensor<{M}x{M}xf32>)
                     outs(%f : tensor<{M}x{M}xf32>) -> tensor<{M}x{M}xf32>
  return %r : tensor<{M}x{M}xf32>
}}
"""


def seconds(call) -> float:
    t0 = time.perf_counter()
    call()
    return time.perf_counter() - t0


def rounds(contenders: dict, count: int) -> dict[str, float]:
    """Median milliseconds per call of each contender, interleaved over ``count`` rounds."""
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for call in contenders.values():
        call()  # warm up (first-call caches, page faults of staging memory)
    for _ in range(count):
        for name, call in contenders.items():
            samples[name].append(seconds(call))
    return {name: statistics.median(s) * 1e3 for name, s in samples.items()}


def aligned_copy(array):
    from hal_core.hal.allocator import aligned_host_array

    out = aligned_host_array(array.nbytes).view(array.dtype).reshape(array.shape)
    out[...] = array
    return out


def bench_axpy(count: int) -> dict:
    import numpy as np
    from _modules import axpy_by_hand, build

    from hal_core.runtime import load_module

    module, source = build(AXPY_IR, lambda m: axpy_by_hand(N, 2.0, m))
    rng = np.random.default_rng(0)
    a = rng.standard_normal(N, dtype=np.float32)
    b = rng.standard_normal(N, dtype=np.float32)
    a64, b64 = aligned_copy(a), aligned_copy(b)
    task, sync = load_module(module, "local-task"), load_module(module, "local-sync")
    want = a + b * 2
    for m in (task, sync):
        np.testing.assert_allclose(m.main(a, b), want, rtol=1e-6)
    contenders = {
        "numpy": lambda: a + b * 2,
        "hal local-task": lambda: task.main(a, b),
        "hal local-sync": lambda: sync.main(a, b),
        "hal local-task aligned": lambda: task.main(a64, b64),
        "hal local-sync aligned": lambda: sync.main(a64, b64),
    }
    ms = rounds(contenders, count)
    task.close()
    sync.close()
    return {"module_source": source, "alignment_of_numpy_arrays": int(a.ctypes.data % 64),
            "workgroups": list(module.executables[0].variants[0].entry_points[0]
                               .workgroup_count), **_ratios(ms)}


def bench_matmul(count: int) -> dict:
    import numpy as np
    from _modules import build, matmul_by_hand

    from hal_core.runtime import load_module

    module, source = build(MATMUL_IR, lambda m: matmul_by_hand(M, M, M, m))
    rng = np.random.default_rng(1)
    a = rng.standard_normal((M, M), dtype=np.float32)
    b = rng.standard_normal((M, M), dtype=np.float32)
    task, sync = load_module(module, "local-task"), load_module(module, "local-sync")
    want = a @ b
    for m in (task, sync):
        np.testing.assert_allclose(m.main(a, b), want, rtol=1e-3, atol=1e-3)
    contenders = {
        "numpy": lambda: a @ b,
        "hal local-task": lambda: task.main(a, b),
        "hal local-sync": lambda: sync.main(a, b),
    }
    ms = rounds(contenders, count)
    task.close()
    sync.close()
    return {"module_source": source, **_ratios(ms)}


def _ratios(ms: dict[str, float]) -> dict:
    ratios = {name: t / ms["numpy"] for name, t in ms.items() if name != "numpy"}
    return {"median_ms": ms, "ratio_to_numpy": ratios,
            "meets_target": {name: r <= TARGET_RATIO for name, r in ratios.items()}}


def iree_child() -> None:
    """Inside the IREE venv: one timed call of IREE's vmvx matmul (after one untimed)."""
    import iree.compiler as ireec
    import iree.runtime as ireert
    import numpy as np

    vmfb = ireec.compile_str(IREE_MATMUL, target_backends=["vmvx"])
    ctx = ireert.SystemContext(config=ireert.Config("local-task"))
    ctx.add_vm_module(ireert.VmModule.copy_buffer(ctx.instance, vmfb))
    f = ctx.modules.module["main"]
    rng = np.random.default_rng(1)
    a = rng.standard_normal((M, M), dtype=np.float32)
    b = rng.standard_normal((M, M), dtype=np.float32)
    t = seconds(lambda: f(a, b).to_host())
    print(json.dumps({"iree vmvx local-task matmul1024 ms (one call)": t * 1e3}))


def run_iree() -> dict:
    python = IREE_VENV / "bin" / "python"
    if not python.exists():
        return {"skipped": f"no IREE environment at {IREE_VENV}; run "
                           "bench_call_overhead.py --setup-iree"}
    try:
        proc = subprocess.run([str(python), __file__, "--iree-child"], capture_output=True,
                              text=True, check=False, timeout=1200)
    except subprocess.TimeoutExpired:
        return {"skipped": "IREE's vmvx matmul did not finish within 20 minutes"}
    if proc.returncode != 0:
        return {"skipped": f"IREE child failed: {proc.stderr.strip()[-800:]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iree", action="store_true", help="also time IREE's vmvx matmul")
    parser.add_argument("--iree-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.iree_child:
        iree_child()
        return
    sys.path.insert(0, str(HERE))
    import numpy as np

    results = {"axpy16m": bench_axpy(args.rounds), "matmul1024": bench_matmul(args.rounds)}
    if args.iree:
        results["iree_reference"] = run_iree()
    out = {
        "benchmark": "vmvx through load_module vs numpy (median ms per call)",
        "rounds": args.rounds,
        "target_ratio": TARGET_RATIO,
        "results": results,
        "environment": {"python": platform.python_version(), "numpy": np.__version__,
                        "cpus": os.cpu_count(), "load_average": list(os.getloadavg())},
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    for case in ("axpy16m", "matmul1024"):
        r = results[case]
        print(f"{case}: numpy {r['median_ms']['numpy']:.2f} ms")
        for name, ratio in r["ratio_to_numpy"].items():
            print(f"  {name:24s} {r['median_ms'][name]:9.2f} ms  x{ratio:.2f}  "
                  f"{'ok' if ratio <= TARGET_RATIO else 'over ' + str(TARGET_RATIO)}")
    if "iree_reference" in results:
        print(f"IREE: {results['iree_reference']}")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
