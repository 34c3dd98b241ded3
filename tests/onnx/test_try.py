"""``hal try`` on ONNX models: short names, random weights, onnxruntime as the reference;
and the onnx importer's tools it uses (hal_onnx.zoo)."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from hal_onnx.zoo import MODELS, examples, path, tools
from onnx import TensorProto, helper, numpy_helper

pytest.importorskip("onnxruntime")


def splat(name: str, shape: tuple[int, ...], value: float) -> list:
    """``name`` = ConstantOfShape(shape) of ``value``: how the light models make weights."""
    return [helper.make_node("Constant", [], [name + "_shape"], value=numpy_helper.from_array(
                np.array(shape, np.int64))),
            helper.make_node("ConstantOfShape", [name + "_shape"], [name],
                             value=numpy_helper.from_array(np.array([value], np.float32)))]


@pytest.fixture
def small_onnx(tmp_path):
    """Conv, Relu, global pooling, Gemm, Softmax, every weight a splat."""
    nodes = [*splat("w", (4, 3, 3, 3), 0.1), *splat("b", (4,), 0.05),
             *splat("fc", (4, 6), 0.2), *splat("fb", (6,), 0.0),
             helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("GlobalAveragePool", ["r"], ["p"]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("Gemm", ["f", "fc", "fb"], ["logits"]),
             helper.make_node("Softmax", ["logits"], ["y"], axis=1)]
    graph = helper.make_graph(
        nodes, "small", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    file = tmp_path / "small.onnx"
    onnx.save(model, file)
    return file


def cpu_targets() -> list[str]:
    from hal_core.registry import get_registry

    names = {t.name for t in get_registry().targets() if t.error is None}
    return [t for t in ("vmvx", "llvm-cpu") if t in names]


def test_random_weights_by_default_against_onnxruntime(hal, small_onnx):
    status, out, err = hal("try", str(small_onnx), f"--target-backends={','.join(cpu_targets())}",
                           "--drivers=local-sync,local-task", "--repetitions=2", "--json")
    assert status == 0, err
    data = json.loads(out)
    assert data["weights"] == "random (seed 0; 4 splat weights replaced)"
    assert data["reference"].startswith("onnxruntime ")
    assert data["inputs"] == "1x3x8x8xf32, random (seed 0)"
    rows = data["rows"]
    assert [(r["driver"], r["target"]) for r in rows] == [
        (d, t) for d in ("local-sync", "local-task") for t in cpu_targets()]
    for r in rows:
        assert r["status"] == "ok" and r["chosen"] == r["target"]
        assert r["max_rel_error"] < 1e-5 and r["max_abs_error"] < 1e-6


def test_random_weights_make_the_outputs_differ(small_onnx):
    # Why random weights are the default: with the shipped splats every class is equal.
    x = np.random.default_rng(0).standard_normal((1, 3, 8, 8)).astype(np.float32)
    (shipped,) = tools.reference(str(small_onnx), [x])
    data, replaced = tools.random_weights(str(small_onnx), 0)
    (randomized,) = tools.reference(data, [x])
    assert replaced == 4
    np.testing.assert_allclose(shipped, np.full((1, 6), 1 / 6), rtol=1e-6)
    assert np.ptp(randomized) > 1e-3
    again, _ = tools.random_weights(str(small_onnx), 0)
    assert again == data   # seeded


def test_shipped_weights_and_the_ir_reference(hal, small_onnx):
    status, out, err = hal("try", str(small_onnx), "--target-backends=vmvx",
                           "--drivers=local-sync", "--repetitions=1", "--shipped-weights",
                           "--reference=ir")
    assert status == 0, err
    assert "weights:   as in the file\n" in out
    assert "reference: numpy evaluation of the imported tensor IR (asked for)" in out
    row = out.splitlines()[-1].split()
    assert row[:3] == ["local-sync", "local-sync://", "vmvx"]


def test_a_short_name_finds_a_light_model(hal):
    status, out, err = hal("try", "squeezenet", "--target-backends=vmvx",
                           "--drivers=local-sync", "--repetitions=1", "--json")
    assert status == 0, err
    data = json.loads(out)
    assert data["model"] == "squeezenet" and data["path"] == path("squeezenet")
    assert data["weights"].startswith("random (seed 0; ")
    (row,) = data["rows"]
    assert row["status"] == "ok" and row["max_rel_error"] < 1e-4


def test_importer_option_reaches_the_importer(hal, tmp_path):
    relu = helper.make_model(helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])]),
        opset_imports=[helper.make_opsetid("", 13)])
    relu.ir_version = 7
    onnx.save(relu, tmp_path / "relu.onnx")
    argv = ["try", str(tmp_path / "relu.onnx"), "--target-backends=vmvx",
            "--drivers=local-sync", "--repetitions=1", "--json"]
    status, _, err = hal(*argv)
    assert status == 1 and "--onnx-input-shape" in err
    status, out, err = hal(*argv, "--onnx-input-shape=x=5x3")
    assert status == 0, err
    data = json.loads(out)
    assert data["inputs"] == "5x3xf32, random (seed 0)"
    assert data["weights"] == "as in the file (no splat weights to replace)"
    assert data["rows"][0]["max_abs_error"] == 0.0


def test_examples_are_the_light_models():
    assert list(examples()) == list(MODELS)
    assert all(p.endswith(f"light_{n}.onnx") for n, p in examples().items())


def _refuse(self, source, inputs):
    raise RuntimeError("cannot run this model")


@pytest.mark.parametrize("patch, label", [
    (("reference_runtime", lambda self: None),
     ("numpy evaluation of the imported tensor IR (importer 'onnx' has no reference runtime "
      "here)")),
    (("reference", _refuse),
     "numpy evaluation of the imported tensor IR (onnxruntime "),
])
def test_without_onnxruntime_the_ir_is_the_reference(hal, small_onnx, monkeypatch, patch, label):
    monkeypatch.setattr(type(tools), *patch)
    status, out, err = hal("try", str(small_onnx), "--target-backends=vmvx",
                           "--drivers=local-sync", "--repetitions=1", "--json")
    assert status == 0, err
    data = json.loads(out)
    assert data["reference"].startswith(label)
    if patch[0] == "reference":
        assert "failed: RuntimeError: cannot run this model" in data["reference"]
    assert data["weights"].startswith("random")   # still random: the splats would hide errors
    assert data["rows"][0]["max_rel_error"] < 1e-5
