"""The onnx package's nine light models on a vulkan device, beside onnxruntime.

    python benchmarks/onnx_models_vulkan.py [--device vulkan] [--triple hopper] [--output F]

Per model: weights replaced by random ones (tests/onnx/onnx_models.py, so a wrong layer shows),
compiled for vulkan-spirv with the given target triple, run twice on the device; records the
compile time, the second call's latency (host transfers included) and the maximum relative
error of the outputs and logits against onnxruntime. A model that fails records its error.
Writes benchmarks/results/onnx_models_vulkan.json (run on an NVIDIA H200 through the device
tool; lavapipe works too but takes minutes for the larger models).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "onnx"))

import hal_core  # noqa: E402
from onnx_models import (  # noqa: E402
    MODELS,
    onnxruntime_outputs,
    random_inputs,
    randomized,
    relative_error,
    with_logits,
)


def measure(name: str, device: str, triple: str) -> dict:
    model = with_logits(randomized(name))
    xs = random_inputs(model)
    want = onnxruntime_outputs(model, xs)
    t = time.perf_counter()
    module = hal_core.compile(model.SerializeToString(), ["vulkan-spirv"], importer="onnx",
                              target_options={"vulkan-spirv": {"target-triple": triple}})
    compile_s = time.perf_counter() - t
    with hal_core.load_module(module, device=device) as loaded:
        loaded.main(*xs)
        t = time.perf_counter()
        got = loaded.main(*xs)
        latency = time.perf_counter() - t
    got = got if isinstance(got, tuple) else (got,)
    return {"compile_s": round(compile_s, 2), "latency_s": round(latency, 4),
            "max_relative_error": max(relative_error(g, w) for g, w in zip(got, want))}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--device", default="vulkan")
    p.add_argument("--triple", default="hopper")
    p.add_argument("--output", default=str(ROOT / "benchmarks" / "results" /
                                           "onnx_models_vulkan.json"))
    args = p.parse_args()
    results: dict = {}
    for name in args.models.split(","):
        try:
            results[name] = measure(name, args.device, args.triple)
        except Exception as e:  # noqa: BLE001 - recorded, the other models still run
            results[name] = {"error": f"{type(e).__name__}: {str(e)[:300]}"}
        print(name, results[name], flush=True)
    Path(args.output).write_text(json.dumps(
        {"device": args.device, "triple": args.triple, "models": results}, indent=1) + "\n")
    return 0 if all("error" not in r for r in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
