"""The model tools of the onnx importer (:attr:`hal_core.descriptors.ImporterInfo.tools`).

``hal try`` and the tests use them to try a model end to end:

* :func:`examples`: the light model zoo the onnx package ships (``onnx/backend/test/data/
  light``: SqueezeNet, ResNet-50, ...), by short name (``squeezenet``, ``resnet50``);
* :func:`randomized` / :meth:`OnnxTools.random_weights`: those models make every weight with
  ConstantOfShape of one value, so every class gets the same probability and any output would
  match a reference; this replaces each such constant by an initializer of random values around
  the shipped one (same sign and scale, so batch-norm variances stay positive and activations
  stay in range);
* :meth:`OnnxTools.reference`: the outputs onnxruntime computes, when it is installed (it is
  never a dependency of hal).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
#: The light models, smallest first.
MODELS = ("squeezenet", "shufflenet", "bvlc_alexnet", "resnet50", "densenet121",
          "inception_v1", "inception_v2", "zfnet512", "vgg19")


def path(name: str) -> str:
    """The file of light model ``name`` (one of :data:`MODELS`)."""
    return os.path.join(LIGHT, f"light_{name}.onnx")


def examples() -> dict[str, str]:
    """Short name -> path of the light models present in this onnx installation."""
    return {name: path(name) for name in MODELS if os.path.isfile(path(name))}


def _as_model(source: Any) -> onnx.ModelProto:
    if isinstance(source, onnx.ModelProto):
        model = onnx.ModelProto()
        model.CopyFrom(source)
        return model
    if isinstance(source, (bytes, bytearray, memoryview)):
        return onnx.load_from_string(bytes(source))
    return onnx.load(os.fspath(source))


def randomize_constant_weights(model: onnx.ModelProto, seed: int = 0) -> int:
    """Replace, in place, each ConstantOfShape node by an initializer of random values around
    its value; return how many were replaced."""
    rng = np.random.default_rng(seed)
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:   # shapes may also come from Constant nodes
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            inits.setdefault(node.output[0], numpy_helper.to_array(node.attribute[0].t))
    keep, replaced = [], 0
    for node in model.graph.node:
        if node.op_type != "ConstantOfShape" or node.input[0] not in inits:
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
        replaced += 1
    del model.graph.node[:]
    model.graph.node.extend(keep)
    return replaced


def randomized(name: str, seed: int = 0) -> onnx.ModelProto:
    """Light model ``name`` with random weights (see :func:`randomize_constant_weights`)."""
    model = onnx.load(path(name))
    randomize_constant_weights(model, seed)
    return model


def runtime_inputs(model: onnx.ModelProto) -> list[Any]:
    """The graph inputs a caller feeds (IR-3 models also list their initializers)."""
    inits = {t.name for t in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in inits]


class OnnxTools:
    """The :class:`~hal_core.descriptors.ImporterInfo` ``tools`` of the onnx importer."""

    def examples(self) -> dict[str, str]:
        return examples()

    def random_weights(self, source: Any, seed: int) -> tuple[bytes, int]:
        model = _as_model(source)
        replaced = randomize_constant_weights(model, seed)
        return model.SerializeToString(), replaced

    def reference_runtime(self) -> str | None:
        try:
            import onnxruntime
        except ImportError:
            return None
        return f"onnxruntime {onnxruntime.__version__}"

    def reference(self, source: Any, inputs: list[np.ndarray]) -> list[np.ndarray]:
        import onnxruntime as ort

        model = _as_model(source)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 2
        opts.log_severity_level = 3  # not the unused-initializer warnings of the IR-3 models
        sess = ort.InferenceSession(model.SerializeToString(), opts,
                                    providers=["CPUExecutionProvider"])
        feeds = {i.name: x for i, x in zip(runtime_inputs(model), inputs)}
        return [np.asarray(y) for y in sess.run(None, feeds)]


tools = OnnxTools()
