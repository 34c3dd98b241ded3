"""vmvx through the whole runtime vs numpy, side by side in one run.

* ``axpy16m``: ``a + b*2`` over 16M float32 (numpy: ``a + b * 2``, and numpy writing into a
  reused output: ``np.multiply(b, 2, out=o); np.add(a, o, out=o)``);
* ``matmul1024``: a 1024x1024 by 1024x1024 float32 matmul (numpy: ``a @ b``);
* ``sum_axis0_4096``: ``sum(x, axis=0)`` of a 4096x4096 float32 matrix (numpy: ``x.sum(0)``);
* ``softmax1024``: softmax over the last axis of 1024x1024 float32 (numpy: the usual
  ``e = np.exp(x - x.max(-1, keepdims=True)); e / e.sum(-1, keepdims=True)``, and the same
  computed in place in a reused output);
* ``conv1x1``: a 1x1 convolution, 256 to 256 channels over 64x64 (numpy: the weight matrix
  times the input viewed as a 256x4096 matrix, fresh and into a reused output);
* ``erf1m``: erf of 1M float32 (reference: ``scipy.special.erf``, where scipy is installed;
  also the math.erf-per-element fallback hal used without scipy). scipy is hidden from hal
  in this process, so hal's figure is always its numpy-only erf.

Each program is compiled for vmvx (``hal_core.compile``; hand-built kernel IR if the compiler
is missing) and called through ``load_module(...).main`` on local-task and local-sync, so the
figures include argument binding, submission, waiting and a fresh output per call, as numpy's
include allocating its result. Contenders are interleaved in rounds; figures are medians.

For axpy the arguments are timed twice: as numpy allocates them (large numpy arrays start 16
bytes past a 64-byte boundary, so unless the executable declares a smaller
``binding_alignment`` the runtime copies them into aligned staging memory), and 64-byte aligned
(bound in place). Target: hal / numpy <= 1.5 for every program.
Writes benchmarks/results/vmvx.json.

    python benchmarks/bench_vmvx.py [--rounds 5] [--cases axpy16m,softmax1024] [--iree]

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
#: case name -> benchmark function
CASES = {"axpy16m": "bench_axpy", "matmul1024": "bench_matmul",
         "sum_axis0_4096": "bench_sum_axis0", "softmax1024": "bench_softmax",
         "conv1x1": "bench_conv1x1", "erf1m": "bench_erf"}

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
    o = np.empty_like(a)

    def numpy_reused_output():
        np.multiply(b, 2, out=o)
        np.add(a, o, out=o)

    contenders = {
        "numpy": lambda: a + b * 2,
        "numpy out= reused": numpy_reused_output,
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


def _ratios(ms: dict[str, float], base: str = "numpy") -> dict:
    ratios = {name: t / ms[base] for name, t in ms.items() if name != base}
    hal = {name: r for name, r in ratios.items() if name.startswith("hal")}
    return {"median_ms": ms, "reference": base, "ratio_to_numpy": ratios,
            "meets_target": {name: r <= TARGET_RATIO for name, r in hal.items()}}


def _build(fn, *inputs):
    """Compile ``fn`` (tensor-IR builder calls) over ``inputs`` for vmvx."""
    import hal_core
    from hal_core.ir import Builder

    b = Builder()
    specs = [(f"a{i}", x.shape, x.dtype.name) for i, x in enumerate(inputs)]
    with b.function("main", specs) as f:
        f.ret(fn(*f.args))
    return hal_core.compile(b.module(), target_backends=("vmvx",))


def _hal_vs(count: int, fn, inputs, references: dict, check, base: str = "numpy") -> dict:
    """Time ``fn`` compiled for vmvx on both local drivers beside ``references``."""
    from hal_core.runtime import load_module

    module = _build(fn, *inputs)
    task, sync = load_module(module, "local-task"), load_module(module, "local-sync")
    for m in (task, sync):
        check(m.main(*inputs))
    contenders = {**references, "hal local-task": lambda: task.main(*inputs),
                  "hal local-sync": lambda: sync.main(*inputs)}
    ms = rounds(contenders, count)
    task.close()
    sync.close()
    return _ratios(ms, base)


def bench_sum_axis0(count: int) -> dict:
    import numpy as np
    from hal_core.ir import ops as O

    x = np.random.default_rng(2).standard_normal((4096, 4096), dtype=np.float32)
    want = x.astype(np.float64).sum(0)
    return _hal_vs(count, lambda t: O.sum(t, axis=0), (x,), {"numpy": lambda: x.sum(0)},
                   lambda got: np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3))


def bench_softmax(count: int) -> dict:
    import numpy as np
    from hal_core.ir import ops as O

    x = np.random.default_rng(3).standard_normal((M, M), dtype=np.float32)
    o = np.empty_like(x)

    def numpy_softmax():
        e = np.exp(x - x.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    def numpy_in_place():
        np.subtract(x, x.max(-1, keepdims=True), out=o)
        np.exp(o, out=o)
        np.divide(o, o.sum(-1, keepdims=True), out=o)

    want = numpy_softmax()
    return _hal_vs(count, lambda t: O.softmax(t, -1), (x,),
                   {"numpy": numpy_softmax, "numpy out= reused": numpy_in_place},
                   lambda got: np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7))


def bench_conv1x1(count: int) -> dict:
    import numpy as np
    from hal_core.ir import ops as O

    rng = np.random.default_rng(4)
    c, hw = 256, 64
    x = rng.standard_normal((1, c, hw, hw), dtype=np.float32)
    w = rng.standard_normal((c, c, 1, 1), dtype=np.float32)
    w2, x2 = w.reshape(c, c), x.reshape(c, hw * hw)
    o = np.empty((c, hw * hw), np.float32)
    want = (w2 @ x2).reshape(1, c, hw, hw)
    return _hal_vs(count, lambda t, u: O.conv2d(t, u), (x, w),
                   {"numpy": lambda: np.matmul(w2, x2).reshape(1, c, hw, hw),
                    "numpy out= reused": lambda: np.matmul(w2, x2, out=o)},
                   lambda got: np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3))


def bench_erf(count: int) -> dict:
    import math

    import numpy as np
    from hal_core.ir import ops as O

    try:
        from scipy.special import erf as scipy_erf
    except ImportError:
        scipy_erf = None
    # hal must not find scipy in this process: its figure is the numpy-only erf's
    sys.modules["scipy.special"] = None
    x = np.random.default_rng(5).standard_normal(1 << 20, dtype=np.float32) * 2
    want = np.frompyfunc(math.erf, 1, 1)(x.astype(np.float64)).astype(np.float64)
    per_element = np.frompyfunc(math.erf, 1, 1)
    refs = {"math.erf per element (np.frompyfunc)":
            lambda: per_element(x.astype(np.float64)).astype(np.float32)}
    base = "math.erf per element (np.frompyfunc)"
    if scipy_erf is not None:
        refs = {"scipy.special.erf": lambda: scipy_erf(x), **refs}
        base = "scipy.special.erf"
    return _hal_vs(count, lambda t: O.erf(t), (x,), refs,
                   lambda got: np.testing.assert_allclose(got, want, rtol=2e-7, atol=1e-30),
                   base)


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
    parser.add_argument("--cases", default=",".join(CASES),
                        help="comma-separated subset of: " + ", ".join(CASES))
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--note", default="", help="recorded in the results (e.g. what tree)")
    parser.add_argument("--iree", action="store_true", help="also time IREE's vmvx matmul")
    parser.add_argument("--iree-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.iree_child:
        iree_child()
        return
    sys.path.insert(0, str(HERE))
    import numpy as np

    results = {}
    for case in args.cases.split(","):
        if case not in CASES:
            parser.error(f"unknown case {case!r}; expected some of {', '.join(CASES)}")
        results[case] = globals()[CASES[case]](args.rounds)
    if args.iree:
        results["iree_reference"] = run_iree()
    out = {
        "benchmark": "vmvx through load_module vs numpy (median ms per call)",
        "rounds": args.rounds,
        "target_ratio": TARGET_RATIO,
        **({"note": args.note} if args.note else {}),
        "results": results,
        "environment": {"python": platform.python_version(), "numpy": np.__version__,
                        "cpus": os.cpu_count(), "load_average": list(os.getloadavg())},
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, indent=2) + "\n")
    for case, r in results.items():
        if case == "iree_reference":
            print(f"IREE: {r}")
            continue
        base = r["reference"]
        print(f"{case}: {base} {r['median_ms'][base]:.2f} ms")
        for name, ratio in r["ratio_to_numpy"].items():
            verdict = ("ok" if ratio <= TARGET_RATIO else "over " + str(TARGET_RATIO)) \
                if name.startswith("hal") else ""
            print(f"  {name:38s} {r['median_ms'][name]:9.2f} ms  x{ratio:.2f}  {verdict}")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
