"""The onnx package's light model zoo, with random weights for comparisons.

The shipped models make every weight with ConstantOfShape of one value, so every class gets
the same probability and any output matches. ``randomized`` replaces each of those constants
with an initializer of random values around the shipped one (same sign and scale, so batch-norm
variances stay positive and activations stay in range)."""

from __future__ import annotations

import os

import numpy as np
import onnx
from onnx import numpy_helper

LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
MODELS = ("squeezenet", "shufflenet", "bvlc_alexnet", "resnet50", "densenet121",
          "inception_v1", "inception_v2", "zfnet512", "vgg19")


def path(name: str) -> str:
    return os.path.join(LIGHT, f"light_{name}.onnx")


def randomized(name: str, seed: int = 0) -> onnx.ModelProto:
    model = onnx.load(path(name))
    rng = np.random.default_rng(seed)
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    keep = []
    for node in model.graph.node:
        if node.op_type != "ConstantOfShape":
            keep.append(node)
            continue
        shape = tuple(int(d) for d in inits[node.input[0]])
        value = numpy_helper.to_array(node.attribute[0].t).reshape(-1)[0] \
            if node.attribute else np.float32(0)
        if value.dtype.kind == "f":
            if len(shape) >= 2:  # conv / fully connected weights: He initialisation
                data = rng.normal(0, np.sqrt(2.0 / np.prod(shape[1:])), shape)
            elif value != 0:
                data = value * rng.uniform(0.5, 1.5, shape)
            else:
                data = rng.normal(0, 0.05, shape)
            data = data.astype(value.dtype)
        else:
            data = np.full(shape, value)
        model.graph.initializer.append(numpy_helper.from_array(data, node.output[0]))
        if model.ir_version < 4:  # IR 3: every initializer is also a graph input
            model.graph.input.append(onnx.helper.make_tensor_value_info(
                node.output[0], onnx.helper.np_dtype_to_tensor_dtype(data.dtype), data.shape))
    del model.graph.node[:]
    model.graph.node.extend(keep)
    return model


def with_logits(model: onnx.ModelProto) -> onnx.ModelProto:
    """Also output the final Softmax's input: near-uniform probabilities would hide errors."""
    softmax = [n for n in model.graph.node if n.op_type == "Softmax"]
    if not softmax:  # DenseNet-121 ends with its logits
        return model
    softmax = softmax[-1]
    inferred = onnx.shape_inference.infer_shapes(model)
    info = [v for v in inferred.graph.value_info if v.name == softmax.input[0]][0]
    model.graph.output.append(info)
    return model


def available_targets() -> list[str]:
    """The CPU targets to run models on: vmvx, and llvm-cpu where it is installed."""
    from hal_core.registry import get_registry

    names = {t.info.name for t in get_registry().targets() if t.error is None}
    return [t for t in ("vmvx", "llvm-cpu") if t in names]


def runtime_inputs(model: onnx.ModelProto) -> list:
    inits = {t.name for t in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in inits]


def random_inputs(model: onnx.ModelProto, seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal([d.dim_value for d in i.type.tensor_type.shape.dim])
            .astype(np.float32) for i in runtime_inputs(model)]


def onnxruntime_outputs(model: onnx.ModelProto, inputs: list[np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    opts.log_severity_level = 3  # not the unused-initializer warnings of the IR-3 models
    sess = ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])
    return sess.run(None, {i.name: x for i, x in zip(runtime_inputs(model), inputs)})


def relative_error(got: np.ndarray, want: np.ndarray) -> float:
    """max |got - want| / max |want|."""
    return float(np.max(np.abs(got.astype(np.float64) - want)) / max(np.max(np.abs(want)), 1e-30))
