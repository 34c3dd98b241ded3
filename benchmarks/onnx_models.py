"""The onnx package's nine light models on every CPU target and driver, beside onnxruntime.

    python benchmarks/onnx_models.py [--models squeezenet,resnet50] [--targets vmvx,llvm-cpu]

Per model and target: the shipped model's compile time (as shipped, opset 9), then the same
model with random weights (tests/onnx/onnx_models.py) compiled and run once per driver; the
maximum relative error of the outputs and of the logits against onnxruntime (2 threads), and
the second call's latency beside onnxruntime's. Writes benchmarks/results/onnx_models.json
and the table in plugins/onnx/README.md.
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
    available_targets,
    onnxruntime_outputs,
    path,
    random_inputs,
    randomized,
    relative_error,
    with_logits,
)

RESULTS = ROOT / "benchmarks" / "results" / "onnx_models.json"
README = ROOT / "plugins" / "onnx" / "README.md"
BEGIN, END = "<!-- models:begin -->", "<!-- models:end -->"


def measure(name: str, target: str) -> dict:
    t = time.perf_counter()
    hal_core.compile(path(name), [target])
    shipped_s = time.perf_counter() - t
    model = with_logits(randomized(name))
    xs = random_inputs(model)
    want = onnxruntime_outputs(model, xs)
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    opts.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])
    feeds = {i.name: x for i, x in zip(sess.get_inputs(), xs)}
    sess.run(None, feeds)
    t = time.perf_counter()
    sess.run(None, feeds)
    ort_s = time.perf_counter() - t
    t = time.perf_counter()
    compiled = hal_core.compile(model.SerializeToString(), [target], importer="onnx")
    random_s = time.perf_counter() - t
    out = {"compile_shipped_s": round(shipped_s, 2), "compile_random_s": round(random_s, 2),
           "onnxruntime_2_threads_s": round(ort_s, 4), "drivers": {}}
    for driver in ("local-sync", "local-task"):
        with hal_core.load_module(compiled, device=driver) as loaded:
            got = loaded.main(*xs)
            t = time.perf_counter()
            got = loaded.main(*xs)
            lat = time.perf_counter() - t
        got = got if isinstance(got, tuple) else (got,)
        out["drivers"][driver] = {
            "latency_s": round(lat, 4),
            "max_relative_error": max(relative_error(g, w) for g, w in zip(got, want))}
    return out


def table(results: dict) -> str:
    rows = ["| model | target | compile as shipped | local-sync max rel. error | local-task "
            "max rel. error | local-task latency | onnxruntime (2 threads) |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, per_target in results.items():
        for target, r in per_target.items():
            d = r["drivers"]
            rows.append(f"| {name} | {target} | {r['compile_shipped_s']:.1f} s | "
                        f"{d['local-sync']['max_relative_error']:.1e} | "
                        f"{d['local-task']['max_relative_error']:.1e} | "
                        f"{1000 * d['local-task']['latency_s']:.0f} ms | "
                        f"{1000 * r['onnxruntime_2_threads_s']:.0f} ms |")
    return "\n".join(rows)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--targets", default=",".join(available_targets()))
    args = p.parse_args()
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"models": {}}
    for name in args.models.split(","):
        for target in args.targets.split(","):
            r = measure(name, target)
            data["models"].setdefault(name, {})[target] = r
            sys.stdout.write(f"{name} {target}: {json.dumps(r)}\n")
            sys.stdout.flush()
            RESULTS.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    text = README.read_text()
    start, end = text.find(BEGIN), text.find(END)
    README.write_text(text[:start] + BEGIN + "\n" + table(data["models"]) + "\n" + text[end:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
