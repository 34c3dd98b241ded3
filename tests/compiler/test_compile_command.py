"""``hal compile``: flags, aliases, stdin, --dump-ir, and its errors."""

from __future__ import annotations

import numpy as np
import pytest

import hal_core
from hal_core.cli import main
from hal_core.module.model import ExecutionModel
from hal_core.module.reader import load_module_file

PROGRAM = """func.func @main(%a: tensor<2x3xf32>, %b: tensor<3xf32>) -> tensor<2x3xf32> {
  %0 = add %a, %b
  %1 = relu %0
  return %1 : tensor<2x3xf32>
}
"""


@pytest.fixture
def program(tmp_path):
    path = tmp_path / "prog.mlir"
    path.write_text(PROGRAM)
    return path


def _check_runs(path) -> None:
    a = np.array([[-1, 0, 1], [2, -3, 4]], np.float32)
    b = np.array([0.5, 0.5, -2], np.float32)
    loaded = hal_core.load_module(str(path), device="local-sync")
    try:
        np.testing.assert_array_equal(loaded.main(a, b), np.maximum(a + b, 0))
    finally:
        loaded.close()


def test_compile_writes_a_module_that_runs(program, tmp_path, capsys) -> None:
    out = tmp_path / "out.halm"
    assert main(["compile", str(program), "--target-backends=vmvx", "-o", str(out)]) == 0
    m = load_module_file(out)
    assert m.name == "prog" and m.executables[0].variants[0].format == "vmvx-bytecode"
    _check_runs(out)
    assert capsys.readouterr().err == ""


def test_iree_spellings_are_accepted(program, tmp_path) -> None:
    out = tmp_path / "inline.halm"
    assert main(["compile", str(program), "--iree-hal-target-backends=vmvx",
                 "--iree-execution-model=inline-static", "-o", str(out)]) == 0
    assert load_module_file(out).execution_model is ExecutionModel.INLINE
    _check_runs(out)


def test_dump_ir_directory(program, tmp_path) -> None:
    dump = tmp_path / "ir"
    assert main(["compile", str(program), "--target-backends=vmvx", "-o",
                 str(tmp_path / "o.halm"), f"--dump-ir={dump}"]) == 0
    assert (dump / "00-input.mlir").read_text().startswith("func.func @main")
    assert "kernel main_dispatch_0_relu" in (dump / "03-kernels.txt").read_text()


@pytest.mark.parametrize("args, status, message", [
    (["--target-backends=vmvxx"], 2, "did you mean 'vmvx'"),
    ([], 2, "no target backend given"),
    (["--target-backends=vmvx", "--execution-model=eager"], 2, "unknown execution model"),
    (["--target-backends=vmvx", "--vmvx-bogus=1"], 2, "vmvx has no options"),
    (["--target-backends=vmvx", "--frobnicate=1"], 2, "unrecognized option '--frobnicate'"),
])
def test_flag_errors(program, tmp_path, capsys, args, status, message) -> None:
    out = tmp_path / "x.halm"
    assert main(["compile", str(program), "-o", str(out), *args]) == status
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_missing_output_and_missing_input(program, tmp_path, capsys) -> None:
    assert main(["compile", str(program), "--target-backends=vmvx"]) == 2
    assert "-o out.halm" in capsys.readouterr().err
    assert main(["compile", str(tmp_path / "nope.mlir"), "--target-backends=vmvx", "-o",
                 str(tmp_path / "x.halm")]) == 2
    assert "nope.mlir" in capsys.readouterr().err


def test_bad_ir_reports_line_and_column(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.mlir"
    bad.write_text(PROGRAM.replace("relu %0", "relux %0"))
    assert main(["compile", str(bad), "--target-backends=vmvx", "-o",
                 str(tmp_path / "x.halm")]) == 1
    err = capsys.readouterr().err
    assert "bad.mlir:3:" in err and "relu" in err


def test_stdin_input(tmp_path, run_hal) -> None:
    import subprocess
    import sys

    out = tmp_path / "stdin.halm"
    proc = subprocess.run([sys.executable, "-m", "hal_core.cli", "compile", "-",
                           "--target-backends=vmvx", "-o", str(out)], input=PROGRAM.encode(),
                          capture_output=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    _check_runs(out)
