"""The onnx package's light model zoo, with random weights for comparisons.

The zoo and ``randomized`` live in the onnx plugin (:mod:`hal_onnx.zoo`, also used by
``hal try``); this module adds what only tests and benchmarks need."""

from __future__ import annotations

import numpy as np
import onnx
from hal_onnx.zoo import LIGHT, MODELS, path, randomized, runtime_inputs, tools  # noqa: F401


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


def random_inputs(model: onnx.ModelProto, seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal([d.dim_value for d in i.type.tensor_type.shape.dim])
            .astype(np.float32) for i in runtime_inputs(model)]


def onnxruntime_outputs(model: onnx.ModelProto, inputs: list[np.ndarray]) -> list[np.ndarray]:
    return tools.reference(model, inputs)


def relative_error(got: np.ndarray, want: np.ndarray) -> float:
    """max |got - want| / max |want|."""
    return float(np.max(np.abs(got.astype(np.float64) - want)) / max(np.max(np.abs(want)), 1e-30))
