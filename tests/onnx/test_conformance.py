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


@pytest.fixture(scope="module")
def vmvx_report():
    return conformance.run("vmvx", "local-sync")


def test_no_wrong_answers_or_crashes(vmvx_report):
    bad = {n: r["detail"] for n, r in vmvx_report["results"].items()
           if r["outcome"] in ("wrong", "crash")}
    assert not bad


def test_unsupported_cases_say_what_is_missing(vmvx_report):
    for name, r in vmvx_report["results"].items():
        if r["outcome"] == "unsupported":
            d = r["detail"]
            assert any(k in d for k in ("ONNX node", "graph input", "opset", "domain",
                                        "graph output")), (name, d)


def test_pass_count_does_not_regress(vmvx_report):
    recorded = json.loads(RESULTS.read_text())["targets"]["vmvx"]
    assert vmvx_report["numeric_pass"] >= recorded["numeric_pass"]
    assert vmvx_report["numeric_cases"] == recorded["numeric_cases"]


def test_xfail_entries_are_still_failing(vmvx_report):
    for name in conformance.load_xfails():
        assert vmvx_report["results"][name]["outcome"] == "xfail", \
            f"{name} passes now: remove it from xfail.txt"
