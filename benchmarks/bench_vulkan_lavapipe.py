"""SqueezeNet, ShuffleNet and ResNet-50 on lavapipe (Mesa's CPU Vulkan), as CI runs them.

    python benchmarks/bench_vulkan_lavapipe.py [--models squeezenet,shufflenet,resnet50]
        [--validation] [--calls 3] [--output F]

Per model (random weights, tests/onnx/onnx_models.py), side by side in one run:

* ``cpu-blocked``: the ``lavapipe`` target triple, whose CPU device type gives matmul and conv2d
  the barrier-free register-blocked kernels (hal_vulkan/spirv/cpu_gemm.py);
* ``gpu-tiles``: the same limits without the CPU device type, i.e. the shared-memory tiles the
  GPU triples get (what the lavapipe triple produced before);
* ``onnxruntime``: its CPU provider at 2 threads, the reference the tests compare against.

For each: the compile time, the load time, the first call (llvmpipe builds a pipeline's code
when it is first dispatched, so this is where shader compilation shows) and the median of the
later calls; the maximum relative error against onnxruntime. Mesa's on-disk shader cache is
disabled (``MESA_SHADER_CACHE_DISABLE``) so that every first call is cold, as on a fresh CI
machine. Writes benchmarks/results/vulkan_lavapipe.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("MESA_SHADER_CACHE_DISABLE", "true")  # before the Vulkan loader starts

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "onnx"))

import hal_core  # noqa: E402
from onnx_models import (  # noqa: E402
    onnxruntime_outputs,
    random_inputs,
    randomized,
    relative_error,
    with_logits,
)


def _ort_latency(model, xs, calls: int) -> float:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    opts.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])
    feeds = {i.name: x for i, x in zip(sess.get_inputs(), xs)}
    sess.run(None, feeds)
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        sess.run(None, feeds)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _hal(model, xs, want, options: dict, calls: int) -> dict:
    from hal_vulkan.driver.device import VulkanDriver

    t = time.perf_counter()
    module = hal_core.compile(model.SerializeToString(), ["vulkan-spirv"], importer="onnx",
                              target_options={"vulkan-spirv": options})
    compile_s = time.perf_counter() - t
    device = VulkanDriver().create_device()
    try:
        t = time.perf_counter()
        with hal_core.load_module(module, device=device) as loaded:
            load_s = time.perf_counter() - t
            t = time.perf_counter()
            got = loaded.main(*xs)
            first_s = time.perf_counter() - t
            later = []
            for _ in range(calls):
                t = time.perf_counter()
                loaded.main(*xs)
                later.append(time.perf_counter() - t)
    finally:
        device.close()
    got = got if isinstance(got, tuple) else (got,)
    return {"compile_s": round(compile_s, 2), "load_s": round(load_s, 2),
            "first_call_s": round(first_s, 2), "later_call_s": round(statistics.median(later), 3),
            "max_relative_error": max(relative_error(g, w) for g, w in zip(got, want))}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="squeezenet,shufflenet,resnet50")
    p.add_argument("--validation", action="store_true",
                   help="run with the Khronos validation layer on, as CI does")
    p.add_argument("--calls", type=int, default=3, help="later calls timed (median)")
    p.add_argument("--output", default=str(ROOT / "benchmarks" / "results" /
                                           "vulkan_lavapipe.json"))
    args = p.parse_args()
    os.environ["HAL_VULKAN_VALIDATION"] = "1" if args.validation else "0"
    from hal_vulkan.target_env import TRIPLES, render_target_env

    contenders = {
        "cpu-blocked": {"target-triple": "lavapipe"},
        "gpu-tiles": {"target-env": render_target_env(replace(TRIPLES["lavapipe"], vendor=None))},
    }
    results: dict = {}
    for name in args.models.split(","):
        model = with_logits(randomized(name))
        xs = random_inputs(model)
        want = onnxruntime_outputs(model, xs)
        row = {"onnxruntime_call_s": round(_ort_latency(model, xs, args.calls), 4)}
        for label, options in contenders.items():
            row[label] = _hal(model, xs, want, options, args.calls)
        results[name] = row
        print(name, json.dumps(row), flush=True)
    total = {label: round(sum(r[label]["compile_s"] + r[label]["load_s"]
                              + r[label]["first_call_s"] for r in results.values()), 1)
             for label in contenders}
    Path(args.output).write_text(json.dumps({
        "device": "lavapipe (Mesa llvmpipe), shader cache disabled",
        "validation": args.validation, "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(), "compile_load_first_call_total_s": total,
        "models": results}, indent=1) + "\n")
    print("compile + load + first call, all models:", total)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
