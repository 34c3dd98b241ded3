"""ResNet-50 (the onnx package's light model, batch 1) on hal llvm-cpu/local-task beside
onnxruntime's CPU provider at 2 threads, each in its own process so that peak RSS is its own.

hal runs as IREE does: ``hal compile`` writes a .halm in one process (timed with the object
cache off, then again with a warm cache; its peak RSS recorded), and a second process loads the .halm and runs
it. onnxruntime's process creates its session (graph optimisation included) and runs. Per
contender: the preparation time (module load / session creation), the median latency of
``--iters`` calls after one warm-up call, and the process's peak RSS (VmHWM). Outputs of
the two are compared (random input). Run with the shipped weights (ConstantOfShape, all equal:
hal stores each as a splat and shares equal ones) and with random weights substituted (100 MB
of distinct weights, as a trained model has). Writes
benchmarks/results/onnx_resnet50.json.

    python benchmarks/bench_onnx_resnet50.py [--iters 20] [--target llvm-cpu]

Targets from issue 10: latency <= 1.5x onnxruntime's; peak RSS <= onnxruntime's + 20%.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "onnx_resnet50.json"


def shipped_model_path() -> str:
    import onnx

    return os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light",
                        "light_resnet50.onnx")


def peak_rss_mib() -> float:
    """This process's peak resident set (VmHWM). Not ru_maxrss: Linux carries that across
    exec from the parent, so every child reported at least this script's own peak (which
    holds the random-weights model)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def child(kind: str, model: str, target: str, iters: int, halm: str) -> dict:
    out: dict = {}
    if kind == "compile":
        import hal_core
        from hal_core.module.writer import write_module

        t = time.perf_counter()
        hal_core.compile(model, [target], target_options={target: {"no-cache": "1"}}
                         if target == "llvm-cpu" else None)
        out["compile_uncached_s"] = time.perf_counter() - t
        hal_core.compile(model, [target])  # fills the object cache (--no-cache skips it)
        t = time.perf_counter()
        write_module(hal_core.compile(model, [target]), halm)
        out["compile_cached_s"] = time.perf_counter() - t
        out["peak_rss_mib"] = peak_rss_mib()
        return out
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    if kind == "ort":
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 2
        opts.log_severity_level = 3
        t = time.perf_counter()
        sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
        out["prepare_s"] = time.perf_counter() - t
        name = sess.get_inputs()[0].name

        def call():
            return sess.run(None, {name: x})[0]
    else:
        import hal_core

        t = time.perf_counter()
        loaded = hal_core.load_module(halm, device="local-task://?workers=2")
        out["prepare_s"] = time.perf_counter() - t

        def call():
            return loaded.main(x)
    y = np.array(call())
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    out["latency_s"] = statistics.median(times)
    out["peak_rss_mib"] = peak_rss_mib()
    np.save(f"/tmp/bench_onnx_resnet50_{kind}.npy", y)
    return out


def measure(weights: str, args: argparse.Namespace, tmp: str) -> dict:
    model = shipped_model_path()
    if weights == "random":
        import onnx

        sys.path.insert(0, str(HERE.parent / "tests" / "onnx"))
        from onnx_models import randomized

        model = os.path.join(tmp, "resnet50_random.onnx")
        onnx.save(randomized("resnet50"), model)
    elif weights != "shipped":
        raise SystemExit(f"--weights: expected shipped and/or random, found {weights!r}")
    halm = os.path.join(tmp, f"resnet50_{weights}.halm")
    out: dict = {}
    for kind in ("compile", "ort", "hal"):
        r = subprocess.run([sys.executable, __file__, "--child", kind, "--model", model,
                            "--target", args.target, "--iters", str(args.iters), "--halm", halm],
                           capture_output=True, text=True)
        if r.returncode:
            sys.stderr.write(r.stderr[-3000:])
            raise SystemExit(1)
        out[kind] = json.loads(r.stdout.strip().splitlines()[-1])
        time.sleep(0.5)  # let the previous process's threads and memory go
    a, b = (np.load(f"/tmp/bench_onnx_resnet50_{k}.npy") for k in ("hal", "ort"))
    out["max_abs_diff"] = float(np.max(np.abs(a - b)))
    out["max_rel_err"] = float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-30))
    out["latency_ratio"] = out["hal"]["latency_s"] / out["ort"]["latency_s"]
    out["rss_ratio"] = out["hal"]["peak_rss_mib"] / out["ort"]["peak_rss_mib"]
    return out


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--target", default="llvm-cpu")
    p.add_argument("--child", default=None)
    p.add_argument("--halm", default=None)
    p.add_argument("--model", default=None)
    p.add_argument("--weights", default="shipped,random",
                   help="shipped (the light model's ConstantOfShape weights, all equal), random "
                        "(He-initialised random initializers instead: 100 MB of distinct "
                        "weights), or both")
    args = p.parse_args()
    if args.child:
        out = child(args.child, args.model, args.target, args.iters, args.halm)
        sys.stdout.write(json.dumps(out) + "\n")
        return 0
    results: dict = {"target": args.target, "driver": "local-task://?workers=2",
                     "iters": args.iters}
    with tempfile.TemporaryDirectory() as tmp:
        for weights in args.weights.split(","):
            results[weights] = measure(weights, args, tmp)
    RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    sys.stdout.write(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
