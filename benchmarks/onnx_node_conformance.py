"""Run onnx's node conformance cases on each CPU target and record the counts.

    python benchmarks/onnx_node_conformance.py [--targets vmvx,llvm-cpu]

Writes benchmarks/results/onnx_node_conformance.json (per target: counts, pass rate of the
float and integer cases, the outcome of every case) and the table in plugins/onnx/README.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import onnx

from hal_onnx import conformance

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "onnx_node_conformance.json"
README = ROOT / "plugins" / "onnx" / "README.md"
BEGIN, END = "<!-- conformance:begin -->", "<!-- conformance:end -->"


def table(targets: dict) -> str:
    rows = ["| target / driver | float+integer cases passing | all cases | unsupported | "
            "expected failures | wrong / crash |", "| --- | --- | --- | --- | --- | --- |"]
    for name, r in targets.items():
        c = r["counts"]
        rows.append(f"| {name} / {r['driver']} | **{r['numeric_pass']} of {r['numeric_cases']}"
                    f" ({100 * r['numeric_pass'] / r['numeric_cases']:.1f}%)** | "
                    f"{c['pass']} of {r['cases']} | {c['unsupported']} | {c['xfail']} | "
                    f"{c['wrong'] + c['crash']} |")
    return "\n".join(rows)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--targets", default="vmvx,llvm-cpu")
    p.add_argument("--driver", default="local-sync")
    args = p.parse_args()
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"targets": {}}
    for target in args.targets.split(","):
        report = conformance.run(target, args.driver)
        data["targets"][target] = report
        sys.stdout.write(f"{target}: {report['numeric_pass']} of {report['numeric_cases']} "
                         f"({report['seconds']} s)\n")
    data.update(onnx=onnx.__version__, machine=platform.machine(),
                date=time.strftime("%Y-%m-%d"))
    RESULTS.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    text = README.read_text()
    start, end = text.find(BEGIN), text.find(END)
    README.write_text(text[:start] + BEGIN + "\n" + table(data["targets"]) + "\n" + text[end:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
