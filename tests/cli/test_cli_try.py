"""``hal try MODEL``: the table (rows, columns, errors), the progress bar, bad input."""

from __future__ import annotations

import json

import pytest

from hal_core.registry import get_registry

PROGRAM = """\
func.func @main(%x: tensor<4x8xf32>, %w: tensor<8x5xf32>) -> tensor<4x5xf32> {
  %0 = matmul %x, %w : (tensor<4x8xf32>, tensor<8x5xf32>) -> tensor<4x5xf32>
  %1 = tanh %0 : (tensor<4x5xf32>) -> tensor<4x5xf32>
  %2 = softmax %1 {axis = 1} : (tensor<4x5xf32>) -> tensor<4x5xf32>
  return %2 : tensor<4x5xf32>
}
"""
HEADERS = ["DRIVER", "DEVICE", "TARGET", "COMPILE", "LATENCY", "CALLS", "MAX ABS ERR",
           "MAX REL ERR", "NOTE"]


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "small.mlir"
    path.write_text(PROGRAM)
    return path


def cpu_targets() -> list[str]:
    names = {t.name for t in get_registry().targets() if t.error is None}
    return [t for t in ("vmvx", "llvm-cpu") if t in names]


def table(out: str) -> list[list[str]]:
    """The table's rows split on the header's column starts."""
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("DRIVER"))
    starts = [lines[head].index(h) for h in HEADERS]
    rows = []
    for line in lines[head:]:
        cells = [line[a:b].strip() for a, b in zip(starts, [*starts[1:], None])]
        rows.append(cells)
    assert rows[0] == HEADERS
    return rows[1:]


def test_every_target_on_every_cpu_driver_matches_the_reference(hal, model):
    targets = cpu_targets()
    status, out, err = hal("try", str(model), f"--target-backends={','.join(targets)}",
                           "--drivers=local-sync,local-task", "--repetitions=3")
    assert status == 0, err
    assert err == ""   # not a terminal: no progress bar
    assert "reference: numpy evaluation of the imported tensor IR" in out
    assert "inputs:    4x8xf32, 8x5xf32, random (seed 0)" in out
    rows = table(out)
    assert [(r[0], r[2]) for r in rows] == [(d, t) for d in ("local-sync", "local-task")
                                            for t in targets]
    for r in rows:
        assert r[1] == f"{r[0]}://"
        assert r[3].endswith("s") and r[4].endswith("s")   # compile time, latency
        assert r[5] == "3"
        assert float(r[6]) < 1e-5 and float(r[7]) < 1e-5
        assert r[8] == ""


def test_json_figures_and_a_missing_driver_is_a_row(hal, model):
    status, out, err = hal("try", str(model), "--target-backends=vmvx", "--json",
                           "--drivers=local-sync,no-such-driver", "--repetitions=2")
    assert status == 0, err
    data = json.loads(out)
    assert data["passed"] is True
    ok, missing = data["rows"]
    assert (ok["driver"], ok["target"], ok["chosen"], ok["status"]) == \
        ("local-sync", "vmvx", "vmvx", "ok")
    assert ok["calls"] == 2 and ok["latency_s"] > 0 and ok["compile_s"] > 0
    assert ok["max_rel_error"] < 1e-5
    assert missing["driver"] == "no-such-driver" and missing["status"] == "unavailable"
    assert "not installed: unknown driver 'no-such-driver'" in missing["problem"]


def test_a_driver_that_runs_no_compiled_target_is_a_row(hal, model):
    status, out, err = hal("try", str(model), "--target-backends=vmvx", "--json",
                           "--drivers=vulkan", "--repetitions=1")
    assert status == 0, err
    row, compiled = json.loads(out)["rows"]
    assert row["status"] == "unavailable" and row["latency_s"] is None
    # Either vulkan has no device here, or its device cannot prepare vmvx bytecode.
    assert "driver unavailable" in row["problem"] or "driver failed" in row["problem"] or \
        "runs none of the compiled targets (vmvx)" in row["problem"]
    # The compile still shows, with its time.
    assert (compiled["driver"], compiled["target"], compiled["status"]) == \
        ("", "vmvx", "unavailable")
    assert compiled["compile_s"] > 0 and "no device of the drivers tried" in compiled["problem"]


def test_every_driver_by_default(hal, model):
    status, out, err = hal("try", str(model), "--target-backends=vmvx", "--json",
                           "--repetitions=1")
    assert status == 0, err
    drivers = {r["driver"] for r in json.loads(out)["rows"]}
    assert drivers == {e.name for e in get_registry().drivers()}


def test_progress_bar_is_drawn_when_forced(hal, model):
    status, out, err = hal("try", str(model), "--target-backends=vmvx",
                           "--drivers=local-sync", "--repetitions=1", "--progress")
    assert status == 0, err
    assert "compiling small.mlir for vmvx [" in err
    assert "] 1/1" not in err    # one-unit phases are named, not barred
    assert "compiling small.mlir for vmvx: constant folding" in err
    assert "/1 kernels, target vmvx" in err or "kernels, target vmvx" in err
    assert err.endswith("\n")   # forced off a terminal: the bar's line is ended
    assert table(out)


def test_progress_bar_can_be_turned_off(hal, model):
    status, _, err = hal("try", str(model), "--target-backends=vmvx",
                         "--drivers=local-sync", "--repetitions=1", "--no-progress")
    assert (status, err) == (0, "")


def test_a_relative_error_above_the_tolerance_fails(hal, model):
    # f32 kernels against a reference that evaluates softmax and tanh more widely: never exact.
    status, out, _ = hal("try", str(model), "--target-backends=vmvx",
                         "--drivers=local-sync", "--repetitions=1", "--tolerance=0")
    rows = table(out)
    assert float(rows[0][7]) > 0
    assert status == 1
    assert rows[0][8].startswith("FAIL: relative error above 0")


@pytest.mark.parametrize("argv, message", [
    (["/no/such/model.onnx"], "model file '/no/such/model.onnx' does not exist"),
    (["squeezenett"], "is neither a model file nor a known short name"),
    (["{model}", "--target-backends=vmvxx"], "unknown target backend 'vmvxx'"),
    (["{model}", "--random-weights"], "random weights need an importer that can make them"),
    (["{model}", "--repetitions=0"], "need repetitions >= 1"),
    (["{model}", "--drivers=,"], "--drivers is empty"),
    (["{model}", "--frobnicate=1"], "unrecognized option '--frobnicate'"),
])
def test_bad_input_is_a_usage_error(hal, model, argv, message):
    status, out, err = hal("try", *[a.format(model=model) for a in argv])
    assert status == 2 and out == ""
    assert err.startswith("hal: error: ") and message in err, err


def test_help_imports_nothing_heavy():
    import subprocess
    import sys

    code = ("import contextlib, io, sys; from hal_core.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out: main(['try', '--help'])\n"
            "assert '--random-weights' in out.getvalue()\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'numpy', 'onnx', 'llvmlite', 'vulkan'}))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
