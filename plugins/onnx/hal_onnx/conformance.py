"""Run onnx's official node conformance cases (``onnx.backend.test.BackendTest``) on hal.

    python -m hal_onnx.conformance --target vmvx --driver local-sync [-k REGEX] [--json OUT]

Each case ends in one of: ``pass``; ``unsupported`` (hal raised one of its errors, which name
what is missing); ``xfail`` (listed in ``xfail.txt`` beside this file, with a reason); or
``wrong`` / ``crash`` (a wrong answer or another exception, neither of which is expected: the
test suite fails on them). Cases are "float or integer" when every input and output is a
tensor of a float or integer (or bool) element type that hal has (no strings, bfloat16,
float8, complex, sequences or optionals).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import unittest
from pathlib import Path
from typing import Any

XFAIL_FILE = Path(__file__).with_name("xfail.txt")
_HAL_TYPES = {1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13}


def load_xfails(path: Path = XFAIL_FILE) -> dict[str, str]:
    """``test_name: reason`` lines (``#`` comments) -> {name: reason}."""
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip() if line.lstrip().startswith("#") else line.strip()
        if line:
            name, _, reason = line.partition(":")
            out[name.strip()] = reason.strip()
    return out


_MODELS: dict[str, Any] = {}


def node_models() -> dict[str, Any]:
    """name -> ModelProto of every node case (as onnx generates them for BackendTest)."""
    if not _MODELS:
        from onnx.backend.test.case.node import collect_testcases

        _MODELS.update((c.name, c.model) for c in collect_testcases(None))
    return _MODELS


def is_numeric_case(name: str) -> bool:
    model = node_models().get(name)
    if model is None:
        return False
    g = model.graph
    for v in list(g.input) + list(g.output):
        if not v.type.HasField("tensor_type") or v.type.tensor_type.elem_type not in _HAL_TYPES:
            return False
    return True


def _cases(pattern: str | None) -> list[tuple[str, unittest.TestCase]]:
    import onnx.backend.test

    from hal_onnx.backend import HalBackend

    bt = onnx.backend.test.BackendTest(HalBackend, __name__)
    out = []
    case = bt.test_cases["OnnxBackendNodeModelTest"]  # node cases only
    for attr in sorted(dir(case)):
        if attr.startswith("test_") and attr.endswith("_cpu"):
            name = attr[:-4]
            if pattern and not re.search(pattern, name):
                continue
            out.append((name, case(attr)))
    return out


def classify(test: unittest.TestCase) -> tuple[str, str]:
    from hal_core.errors import HalError

    result = unittest.TestResult()
    test.run(result)
    if result.wasSuccessful() and not result.skipped:
        return "pass", ""
    if result.skipped:
        return "skipped", result.skipped[0][1]
    problems = result.errors + result.failures
    text = problems[0][1]
    last = text.strip().splitlines()[-1]
    exc_name = last.split(":", 1)[0].rsplit(".", 1)[-1]
    hal_errors = {c.__name__ for c in _subclasses(HalError)}
    if exc_name in hal_errors:
        return "unsupported", last
    if result.failures:
        return "wrong", last
    return "crash", last


def _subclasses(cls: type) -> set[type]:
    out = {cls}
    for c in cls.__subclasses__():
        out |= _subclasses(c)
    return out


def run(target: str, driver: str, pattern: str | None = None) -> dict[str, Any]:
    os.environ["HAL_ONNX_TARGET"] = target
    os.environ["HAL_ONNX_DRIVER"] = driver
    import logging

    logging.disable(logging.WARNING)
    xfails = load_xfails()
    cases = _cases(pattern)
    results: dict[str, dict[str, str]] = {}
    start = time.perf_counter()
    for name, test in cases:
        outcome, detail = classify(test)
        if outcome in ("wrong", "crash") and name in xfails:
            outcome, detail = "xfail", xfails[name]
        results[name] = {"outcome": outcome, "numeric": is_numeric_case(name), "detail": detail}
    numeric = [r for r in results.values() if r["numeric"]]
    counts = {k: sum(r["outcome"] == k for r in results.values())
              for k in ("pass", "unsupported", "xfail", "wrong", "crash", "skipped")}
    return {"target": target, "driver": driver, "cases": len(results),
            "numeric_cases": len(numeric),
            "numeric_pass": sum(r["outcome"] == "pass" for r in numeric),
            "counts": counts, "seconds": round(time.perf_counter() - start, 1),
            "results": results}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--target", default="vmvx")
    p.add_argument("--driver", default="local-sync")
    p.add_argument("-k", dest="pattern", default=None)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    report = run(args.target, args.driver, args.pattern)
    c = report["counts"]
    sys.stdout.write(f"{args.target}/{args.driver}: {report['numeric_pass']} of "
                     f"{report['numeric_cases']} float/integer node cases pass "
                     f"({report['cases']} cases in all: {c})\n")
    for name, r in report["results"].items():
        if r["outcome"] in ("wrong", "crash"):
            sys.stdout.write(f"  {r['outcome']}: {name}: {r['detail'][:200]}\n")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
    return 1 if c["wrong"] or c["crash"] else 0


if __name__ == "__main__":
    sys.exit(main())
