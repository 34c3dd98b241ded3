"""``hal run``: IREE's input syntax, outputs, the old flag spellings, one-line errors."""

from __future__ import annotations

import dataclasses

import numpy as np

from hal_core.module.model import Executable, Variant
from hal_core.module.reader import load_module_file
from hal_core.module.writer import write_module


def test_run_prints_results_in_iree_syntax(hal, modules):
    status, out, err = hal("run", "--device=local-sync", f"--module={modules['add']}",
                           "--function=main", "--input=4xf32=1 2 3 4", "--input=4xf32=[10 20 30 40]")
    assert (status, err) == (0, "")
    assert out == "result[0]: 4xf32=[11 22 33 44]\n"


def test_run_several_results_npy_input_and_output(hal, modules, tmp_path):
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.save(tmp_path / "x.npy", x)
    target = tmp_path / "prod.npy"
    status, out, err = hal("run", str(modules["chain"]), "--device=local-task",
                           f"--input=@{tmp_path / 'x.npy'}", f"--output=@{target}")
    assert status == 0, err
    c = np.arange(6, dtype=np.float32).reshape(2, 3) * 10
    np.testing.assert_array_equal(np.load(target), (x + c) * x)
    assert out.splitlines() == [f"result[0]: written to {target}",
                                "result[1]: 2x3xf32=[0 11 22][33 44 55]"]


def test_old_spellings_are_accepted(hal, modules):
    status, out, err = hal("run", "--driver=local-sync", f"--module_file={modules['chain']}",
                           "--entry_function=copy_fill", "--function_input=6xf32=2")
    assert status == 0, err
    assert out.splitlines() == ["result[0]: 6xf32=[2 2 2 2 2 2]", "result[1]: 6xf32=[1 1 1 1 1 1]"]


def test_iree_driver_names_map_with_a_note(hal, modules):
    status, out, err = hal("run", "--driver=dylib", f"--module_file={modules['add']}",
                           "--function_input=4xf32=1", "--function_input=4xf32=1")
    assert status == 0
    assert out == "result[0]: 4xf32=[2 2 2 2]\n"
    assert "'dylib' is IREE's former driver name; using 'local-task'" in err


def test_inline_module_runs(hal, modules):
    status, out, _ = hal("run", str(modules["inline"]), "--input=4xf32=1", "--input=4xf32=2")
    assert (status, out) == (0, "result[0]: 4xf32=[3 3 3 3]\n")


def _one_line_error(status: int, err: str, code: int) -> str:
    assert status == code
    assert err.startswith("hal: error: ") and err.count("\n") == 1
    return err


def test_unknown_driver_gets_did_you_mean(hal, modules):
    status, _, err = hal("run", "--device=local-snyc", str(modules["add"]))
    assert "did you mean 'local-sync'" in _one_line_error(status, err, 2)


def test_wrong_inputs_are_usage_errors(hal, modules):
    status, _, err = hal("run", str(modules["add"]), "--input=4xf32=1")
    assert "takes 2 arguments, got 1" in _one_line_error(status, err, 2)
    status, _, err = hal("run", str(modules["add"]), "--input=4xf32=1", "--input=3xf32=1")
    assert "argument 1" in _one_line_error(status, err, 2)
    status, _, err = hal("run", str(modules["add"]), "--input=4xf32=1 2")
    assert "needs 4 values" in _one_line_error(status, err, 2)


def test_function_choice(hal, modules):
    status, _, err = hal("run", str(modules["chain"]), "--function=mian")
    assert "did you mean 'main'" in _one_line_error(status, err, 2)
    status, _, err = hal("run", str(modules["add"]), "--input=4xf32=1", "--input=4xf32=1",
                         "--output=-", "--output=@x.npy")
    assert "2 --output flags" in _one_line_error(status, err, 2)


def test_missing_module_and_no_module(hal, tmp_path):
    status, _, err = hal("run", f"--module={tmp_path / 'missing.halm'}")
    assert "cannot read the module file" in _one_line_error(status, err, 1)
    status, _, err = hal("run", "--device=local-sync")
    assert "no module given" in _one_line_error(status, err, 2)


def test_module_without_a_fitting_variant(hal, modules, tmp_path):
    module = load_module_file(modules["add"])
    vmvx = module.executables[0].variants[0]
    spirv = Variant("vulkan-spirv", "spirv", (), vmvx.entry_points, b"\x03\x02\x23\x07")
    path = tmp_path / "spirv.halm"
    write_module(dataclasses.replace(module, executables=(Executable("add_exe", (spirv,)),)),
                 path)
    status, _, err = hal("run", "--device=local-task", str(path))
    message = _one_line_error(status, err, 1)
    assert "local-task://" in message and "spirv" in message
    assert "hal compile --target-backends=vmvx" in message


def test_hal_run_as_a_command(run_hal, modules):
    result = run_hal(["run", f"--module={modules['add']}", "--device=local-sync",
                      "--input=4xf32=1 2 3 4",
                      "--input=4xf32=0.5"])
    assert result.returncode == 0, result.stderr
    assert result.stdout == "result[0]: 4xf32=[1.5 2.5 3.5 4.5]\n"
