"""onnx's node conformance cases (onnx.backend.test.BackendTest) through hal's Backend.

Every case passes, is refused with a hal error that names what is missing, or is an expected
failure listed with a reason in plugins/onnx/hal_onnx/xfail.txt. A wrong answer or crash
fails. The pass count may not fall below the one recorded in
benchmarks/results/onnx_node_conformance.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hal_onnx import conformance

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / \
    "onnx_node_conformance.json"


def _targets() -> list[str]:
    from hal_core.registry import get_registry

    names = {t.info.name for t in get_registry().targets() if t.error is None}
    return [t for t in ("vmvx", "llvm-cpu") if t in names]


@pytest.fixture(scope="module", params=_targets())
def report(request):
    return conformance.run(request.param, "local-sync")


def test_no_wrong_answers_or_crashes(report):
    bad = {n: r["detail"] for n, r in report["results"].items()
           if r["outcome"] in ("wrong", "crash")}
    assert not bad


def test_unsupported_cases_say_what_is_missing(report):
    for name, r in report["results"].items():
        if r["outcome"] == "unsupported":
            d = r["detail"]
            # the importer names the node, input or opset; the compiler and runtime name the
            # dispatch
            assert any(k in d for k in ("ONNX node", "graph input", "opset", "domain",
                                        "graph output", "dispatch of")), (name, d)


def test_pass_count_does_not_regress(report):
    recorded = json.loads(RESULTS.read_text())["targets"][report["target"]]
    assert report["numeric_pass"] >= recorded["numeric_pass"]
    assert report["numeric_cases"] == recorded["numeric_cases"]


def test_xfail_entries_are_still_failing(report):
    for name in conformance.load_xfails():
        assert report["results"][name]["outcome"] == "xfail", \
            f"{name} passes now: remove it from xfail.txt"
