"""The ONNX importer: options, errors, folding and the attribute->input migrations by opset,
each model checked against onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import hal_core
from hal_core.cli import main
from hal_core.errors import CompileError, UsageError

ort = pytest.importorskip("onnxruntime")


def make(nodes, inputs, outputs, opset, inits=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs,
                              [numpy_helper.from_array(v, k) for k, v in dict(inits).items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 7 if opset < 15 else 8
    return model


def vi(name, shape, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)


def check(model, *xs, rtol=1e-5, target="vmvx"):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = sess.run(None, {i.name: x for i, x in zip(sess.get_inputs(), xs)})
    m = hal_core.compile(model.SerializeToString(), [target], importer="onnx")
    with hal_core.load_module(m, device="local-sync") as lm:
        got = lm.main(*xs)
    got = got if isinstance(got, tuple) else (got,)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=rtol, atol=1e-6)


X = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32)


def test_dynamic_dimension_needs_the_input_shape_option(tmp_path):
    model = make([helper.make_node("Relu", ["x"], ["y"])], [vi("x", ["N", 3])],
                 [vi("y", ["N", 3])], 13)
    with pytest.raises(CompileError, match=r"'x' has the dynamic shape Nx3.*"
                                           r"--onnx-input-shape=x=Nx3"):
        hal_core.compile(model.SerializeToString(), ["vmvx"], importer="onnx")
    m = hal_core.compile(model.SerializeToString(), ["vmvx"], importer="onnx",
                         importer_options={"input-shape": "x=5x3"})
    assert m.functions[0].inputs[0].shape == (5, 3)
    with pytest.raises(UsageError, match="does not match the model's shape Nx3"):
        hal_core.compile(model.SerializeToString(), ["vmvx"], importer="onnx",
                         importer_options={"input-shape": "x=5x4"})
    with pytest.raises(UsageError, match="'z', which is not an input"):
        hal_core.compile(model.SerializeToString(), ["vmvx"], importer="onnx",
                         importer_options={"input-shape": "z=5x3"})
    with pytest.raises(UsageError, match="has no option 'shape'"):
        hal_core.compile(model.SerializeToString(), ["vmvx"], importer="onnx",
                         importer_options={"shape": "x=5x3"})
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    out = tmp_path / "m.halm"
    assert main(["compile", str(path), "--target-backends=vmvx", "--onnx-input-shape=x=7x3",
                 "-o", str(out)]) == 0
    from hal_core.module.reader import load_module_file

    assert load_module_file(out).functions[0].inputs[0].shape == (7, 3)
    assert main(["compile", str(path), "--target-backends=vmvx", "-o", str(out)]) != 0


def test_unsupported_op_names_op_node_opset_and_the_list():
    model = make([helper.make_node("Relu", ["x"], ["r"]),
                  helper.make_node("NonZero", ["r"], ["y"], name="nz1")],
                 [vi("x", [3])], [vi("y", [1, None], TensorProto.INT64)], 13)
    with pytest.raises(CompileError, match=r"ONNX node 'nz1' \(op NonZero, opset 13\).*"
                                           r"NonZero is not supported.*plugins/onnx/README.md"):
        hal_core.compile(model.SerializeToString(), ["vmvx"], importer="onnx")


def test_shape_subgraphs_fold_at_import():
    # the exporters' dynamic flatten: Shape -> Gather -> Unsqueeze -> Concat -> Reshape
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
             helper.make_node("Unsqueeze", ["n", "ax"], ["n1"]),
             helper.make_node("Concat", ["n1", "minus1"], ["shape"], axis=0),
             helper.make_node("Reshape", ["x", "shape"], ["f"]),
             helper.make_node("ConstantOfShape", ["cshape"], ["w"],
                              value=numpy_helper.from_array(np.array([0.5], np.float32))),
             helper.make_node("MatMul", ["f", "w"], ["y"])]
    inits = {"zero": np.array(0, np.int64), "ax": np.array([0], np.int64),
             "minus1": np.array([-1], np.int64), "cshape": np.array([60, 2], np.int64)}
    model = make(nodes, [vi("x", [2, 3, 4, 5])], [vi("y", [2, 2])], 13, inits)
    from hal_onnx.importer import import_onnx

    fn = import_onnx(model).functions[0]
    assert sorted({op.name for op in fn.body}) == ["constant", "matmul", "reshape"]
    check(model, X)


def _softmax(opset, axis):
    return make([helper.make_node("Softmax", ["x"], ["y"], axis=axis)], [vi("x", [2, 3, 4, 5])],
                [vi("y", [2, 3, 4, 5])], opset)


MIGRATIONS = {
    "softmax-11-axis1": lambda: _softmax(11, 1),  # coerced to 2-D
    "softmax-13-axis1": lambda: _softmax(13, 1),  # one axis
    "reshape-13": lambda: make([helper.make_node("Reshape", ["x", "s"], ["y"])],
                               [vi("x", [2, 3, 4, 5])], [vi("y", None)], 13,
                               {"s": np.array([2, 0, -1], np.int64)}),
    "slice-9": lambda: make([helper.make_node("Slice", ["x"], ["y"], starts=[1, -3],
                                              ends=[100, -1], axes=[1, 3])],
                            [vi("x", [2, 3, 4, 5])], [vi("y", None)], 9),
    "slice-13": lambda: make([helper.make_node("Slice", ["x", "b", "e", "a", "s"], ["y"])],
                             [vi("x", [2, 3, 4, 5])], [vi("y", None)], 13,
                             {"b": np.array([-1, 4], np.int64),
                              "e": np.array([-100, 0], np.int64),
                              "a": np.array([2, 3], np.int64),
                              "s": np.array([-1, -2], np.int64)}),
    "reducesum-11": lambda: make([helper.make_node("ReduceSum", ["x"], ["y"], axes=[1, -1],
                                                   keepdims=0)],
                                 [vi("x", [2, 3, 4, 5])], [vi("y", None)], 11),
    "reducesum-13": lambda: make([helper.make_node("ReduceSum", ["x", "a"], ["y"])],
                                 [vi("x", [2, 3, 4, 5])], [vi("y", None)], 13,
                                 {"a": np.array([0, 2], np.int64)}),
    "clip-6": lambda: make([helper.make_node("Clip", ["x"], ["y"], min=-0.5, max=0.7)],
                           [vi("x", [2, 3, 4, 5])], [vi("y", None)], 7),
    "clip-13": lambda: make([helper.make_node("Clip", ["x", "", "hi"], ["y"])],
                            [vi("x", [2, 3, 4, 5])], [vi("y", None)], 13,
                            {"hi": np.array(0.3, np.float32)}),
    "squeeze-unsqueeze-11": lambda: make(
        [helper.make_node("Unsqueeze", ["x"], ["u"], axes=[0, -1]),
         helper.make_node("Squeeze", ["u"], ["y"], axes=[0])],
        [vi("x", [2, 3, 4, 5])], [vi("y", None)], 11),
    "squeeze-unsqueeze-13": lambda: make(
        [helper.make_node("Unsqueeze", ["x", "a"], ["u"]),
         helper.make_node("Squeeze", ["u", "b"], ["y"])],
        [vi("x", [2, 3, 4, 5])], [vi("y", None)], 13,
        {"a": np.array([0, -1], np.int64), "b": np.array([-1], np.int64)}),
    "split-11": lambda: make([helper.make_node("Split", ["x"], ["y", "z"], axis=3, split=[2, 3])],
                             [vi("x", [2, 3, 4, 5])], [vi("y", None), vi("z", None)], 11),
    "split-18": lambda: make([helper.make_node("Split", ["x"], ["y", "z"], axis=2,
                                               num_outputs=2)],
                             [vi("x", [2, 3, 4, 5])], [vi("y", None), vi("z", None)], 18),
    "pad-7": lambda: make([helper.make_node("Pad", ["x"], ["y"], pads=[0, 1, 0, 2, 0, 0, 1, -1],
                                            value=1.5)],
                          [vi("x", [2, 3, 4, 5])], [vi("y", None)], 7),
    "pad-13": lambda: make([helper.make_node("Pad", ["x", "p", "v"], ["y"])],
                           [vi("x", [2, 3, 4, 5])], [vi("y", None)], 13,
                           {"p": np.array([0, 0, 1, 1, 0, 0, 2, 0], np.int64),
                            "v": np.array(-2.0, np.float32)}),
    "upsample-7": lambda: make([helper.make_node("Upsample", ["x"], ["y"],
                                                 scales=[1.0, 1.0, 2.0, 3.0])],
                               [vi("x", [2, 3, 4, 5])], [vi("y", None)], 7),
    "upsample-9": lambda: make([helper.make_node("Upsample", ["x", "s"], ["y"])],
                               [vi("x", [2, 3, 4, 5])], [vi("y", None)], 9,
                               {"s": np.array([1, 1, 2, 2], np.float32)}),
    "batchnorm-9": lambda: make([helper.make_node("BatchNormalization",
                                                  ["x", "s", "b", "m", "v"], ["y"],
                                                  epsilon=1e-3)],
                                [vi("x", [2, 3, 4, 5])], [vi("y", None)], 9,
                                {"s": np.array([1, 2, 3], np.float32),
                                 "b": np.array([0, 1, -1], np.float32),
                                 "m": np.array([0.5, 0, 1], np.float32),
                                 "v": np.array([1, 4, 0.25], np.float32)}),
    "gemm-trans-alpha-beta": lambda: make(
        [helper.make_node("Gemm", ["a", "w", "c"], ["y"], transA=1, transB=1, alpha=0.5,
                          beta=2.0)],
        [vi("a", [5, 2])], [vi("y", None)], 11,
        {"w": np.arange(15, dtype=np.float32).reshape(3, 5),
         "c": np.array([1, 2, 3], np.float32)}),
    "conv-same-upper": lambda: make(
        [helper.make_node("Conv", ["x", "w"], ["y"], auto_pad="SAME_UPPER", strides=[2, 2])],
        [vi("x", [2, 3, 4, 5])], [vi("y", None)], 11,
        {"w": np.random.default_rng(1).standard_normal((4, 3, 3, 2)).astype(np.float32)}),
    "maxpool-same-lower": lambda: make(
        [helper.make_node("MaxPool", ["x"], ["y"], auto_pad="SAME_LOWER", kernel_shape=[3, 2],
                          strides=[2, 1])],
        [vi("x", [2, 3, 4, 5])], [vi("y", None)], 11),
    "avgpool-pads-ceil": lambda: make(
        [helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[2, 3], pads=[1, 1, 0, 1],
                          ceil_mode=1)],
        [vi("x", [2, 3, 4, 5])], [vi("y", None)], 11),
    "lrn": lambda: make([helper.make_node("LRN", ["x"], ["y"], size=3, alpha=1e-2, beta=0.6,
                                          bias=2.0)],
                        [vi("x", [2, 3, 4, 5])], [vi("y", None)], 9),
    "flatten-transpose-concat": lambda: make(
        [helper.make_node("Flatten", ["x"], ["f"], axis=2),
         helper.make_node("Transpose", ["f"], ["t"]),
         helper.make_node("Concat", ["t", "t"], ["y"], axis=-1)],
        [vi("x", [2, 3, 4, 5])], [vi("y", None)], 9),
    "dropout-globalavg": lambda: make(
        [helper.make_node("Dropout", ["x"], ["d"], ratio=0.3),
         helper.make_node("GlobalAveragePool", ["d"], ["y"])],
        [vi("x", [2, 3, 4, 5])], [vi("y", None)], 9),
}


@pytest.mark.parametrize("case", sorted(MIGRATIONS))
def test_ops_across_opsets_match_onnxruntime(case):
    model = MIGRATIONS[case]()
    xs = [X if i.name == "x" else np.random.default_rng(2).standard_normal(
        [d.dim_value for d in i.type.tensor_type.shape.dim]).astype(np.float32)
        for i in model.graph.input]
    check(model, *xs)


def test_bad_bytes_are_a_clear_error():
    with pytest.raises(CompileError, match="not a valid ONNX model"):
        hal_core.compile(b"\x01\x02garbage", ["vmvx"], importer="onnx")


def test_a_declared_output_shape_that_disagrees_is_an_error():
    model = make([helper.make_node("Transpose", ["x"], ["y"])], [vi("x", [2, 3])],
                 [vi("y", [2, 3])], 13)
    with pytest.raises(CompileError, match="declares the shape 2x3, the import computed 3x2"):
        hal_core.compile(model.SerializeToString(), ["vmvx"], importer="onnx")


def test_backend_specialises_on_shape_inputs():
    from hal_onnx.backend import HalBackend

    model = make([helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=0)],
                 [vi("x", [2, 3, 4, 5]), vi("axes", [1], TensorProto.INT64)],
                 [vi("y", None)], 13)
    rep = HalBackend.prepare(model)
    for axis in (1, 3, 1):
        (y,) = rep.run([X, np.array([axis], np.int64)])
        np.testing.assert_allclose(y, X.sum(axis=axis), rtol=1e-5)
    assert len(rep.cache) == 2
    rep.close()
    (y,) = HalBackend.run_node(helper.make_node("Relu", ["a"], ["b"]), [X])
    np.testing.assert_array_equal(y, np.maximum(X, 0))
    assert HalBackend.supports_device("CPU") and not HalBackend.supports_device("CUDA")


def test_cli_compiles_one_module_for_every_installed_target(tmp_path):
    from hal_core.module.reader import load_module_file
    from hal_core.registry import get_registry

    targets = [t for t in ("llvm-cpu", "vmvx", "vulkan-spirv")
               if t in {r.info.name for r in get_registry().targets() if r.error is None}]
    model = make([helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
                  helper.make_node("Relu", ["c"], ["y"])],
                 [vi("x", [1, 3, 8, 8])], [vi("y", [1, 4, 8, 8])], 13,
                 {"w": np.random.default_rng(3).standard_normal((4, 3, 3, 3)).astype(np.float32)})
    path = tmp_path / "conv.onnx"
    onnx.save(model, str(path))
    out = tmp_path / "conv.halm"
    assert main(["compile", str(path), f"--target-backends={','.join(targets)}",
                 "-o", str(out)]) == 0
    m = load_module_file(out)
    for e in m.executables:
        assert {v.target_backend for v in e.variants} == set(targets)
