"""ResNet-50 (the onnx package's light model, batch 1) on hal llvm-cpu/local-task beside
onnxruntime's CPU provider at 2 threads, each in its own process so that peak RSS is its own.

Per contender: compile (hal: import + compile of the shipped model with the object cache off,
then with it) or session creation (onnxruntime), the median latency of ``--iters`` calls after
one warm-up call, and the process's peak RSS (ru_maxrss). Outputs of the two are compared
(random input, the shipped weights). Writes benchmarks/results/onnx_resnet50.json.

    python benchmarks/bench_onnx_resnet50.py [--iters 5] [--target llvm-cpu]

Targets from issue 10: latency <= 1.5x onnxruntime's; peak RSS <= onnxruntime's + 20%.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "onnx_resnet50.json"


def model_path() -> str:
    import onnx

    return os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light",
                        "light_resnet50.onnx")


def child(kind: str, target: str, iters: int) -> dict:
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    out: dict = {}
    if kind == "ort":
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 2
        opts.log_severity_level = 3
        t = time.perf_counter()
        sess = ort.InferenceSession(model_path(), opts, providers=["CPUExecutionProvider"])
        out["prepare_s"] = time.perf_counter() - t
        name = sess.get_inputs()[0].name

        def call():
            return sess.run(None, {name: x})[0]
    else:
        import hal_core

        t = time.perf_counter()
        hal_core.compile(model_path(), [target], target_options={target: {"no-cache": "1"}}
                         if target == "llvm-cpu" else None)
        out["compile_uncached_s"] = time.perf_counter() - t
        t = time.perf_counter()
        compiled = hal_core.compile(model_path(), [target])
        out["prepare_s"] = time.perf_counter() - t
        loaded = hal_core.load_module(compiled, device="local-task://?workers=2")

        def call():
            return loaded.main(x)
    y = np.array(call())
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    out["latency_s"] = statistics.median(times)
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    np.save(f"/tmp/bench_onnx_resnet50_{kind}.npy", y)
    return out


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--target", default="llvm-cpu")
    p.add_argument("--child", default=None)
    args = p.parse_args()
    if args.child:
        sys.stdout.write(json.dumps(child(args.child, args.target, args.iters)) + "\n")
        return 0
    results = {}
    for kind in ("ort", "hal"):
        r = subprocess.run([sys.executable, __file__, "--child", kind, "--target", args.target,
                            "--iters", str(args.iters)], capture_output=True, text=True)
        if r.returncode:
            sys.stderr.write(r.stderr[-3000:])
            return 1
        results[kind] = json.loads(r.stdout.strip().splitlines()[-1])
    a, b = (np.load(f"/tmp/bench_onnx_resnet50_{k}.npy") for k in ("hal", "ort"))
    results["max_abs_diff"] = float(np.max(np.abs(a - b)))
    results["latency_ratio"] = results["hal"]["latency_s"] / results["ort"]["latency_s"]
    results["rss_ratio"] = results["hal"]["peak_rss_mib"] / results["ort"]["peak_rss_mib"]
    results["target"] = args.target
    results["driver"] = "local-task://?workers=2"
    results["iters"] = args.iters
    RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    sys.stdout.write(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
