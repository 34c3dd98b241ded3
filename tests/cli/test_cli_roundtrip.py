"""hal compile -> hal run -> hal benchmark -> hal dump on a text IR file, both execution models."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("hal_core.cli.compile")

PROGRAM = """func.func @main(%a: tensor<2x3xf32>, %b: tensor<3xf32>) -> (tensor<2x3xf32>, tensor<2xf32>) {
  %two = constant dense<2.0> : tensor<f32>
  %0 = mul %b, %two : (tensor<3xf32>, tensor<f32>) -> tensor<3xf32>
  %1 = add %a, %0 : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %2 = reduce_sum %1 {axes = [1], keepdims = false} : (tensor<2x3xf32>) -> tensor<2xf32>
  return %1, %2 : tensor<2x3xf32>, tensor<2xf32>
}
"""


@pytest.mark.parametrize("model", ["async", "inline"])
def test_compile_run_benchmark_dump(hal, tmp_path, model):
    source = tmp_path / "prog.mlir"
    source.write_text(PROGRAM)
    module = tmp_path / "prog.halm"
    status, _, err = hal("compile", str(source), "--target-backends=vmvx",
                         f"--execution-model={model}", "-o", str(module))
    assert status == 0, err

    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.array([1, -1, 0.5], np.float32)
    total = tmp_path / "total.npy"
    for device in ("local-sync", "local-task"):
        status, out, err = hal("run", f"--device={device}", f"--module={module}",
                               "--function=main", "--input=2x3xf32=[[0 1 2][3 4 5]]",
                               "--input=3xf32=1 -1 0.5", "--output=-", f"--output=@{total}")
        assert status == 0, err
        assert out.splitlines() == ["result[0]: 2x3xf32=[2 -1 3][5 2 6]",
                                    f"result[1]: written to {total}"]
        np.testing.assert_allclose(np.load(total), (a + 2 * b).sum(axis=1))

    status, out, err = hal("benchmark", f"--module={module}", "--device=local-sync",
                           "--input=2x3xf32=1", "--input=3xf32=1", "--repetitions=5",
                           "--min-time=0", "--json")
    assert status == 0, err
    assert json.loads(out)["execution_model"] == model

    status, out, err = hal("dump", str(module), "--json")
    assert status == 0, err
    info = json.loads(out)
    assert info["execution_model"] == model
    assert info["functions"][0]["signature"] == (
        "(tensor<2x3xf32>, tensor<3xf32>) -> (tensor<2x3xf32>, tensor<2xf32>)")
    assert [v["format"] for v in info["executables"][0]["variants"]] == ["vmvx-bytecode"]
