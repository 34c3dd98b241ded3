"""Folding of nodes whose inputs are all known at import time, with numpy.

The common weight and shape ops have fast paths here; any other deterministic op is run by
onnx's own reference implementation (``onnx.reference``) on the constant inputs, so the
folded value is ONNX's definition of the op, not a second reading of the spec.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# ops that must not be folded (their result differs per run)
_NONDETERMINISTIC = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
                     "Multinomial", "Bernoulli"}
# ops the converters handle even on constants (they have a fast IR form or check attributes)
_NOT_FOLDED = {"Dropout"} | _NONDETERMINISTIC


def fold_node(node: Any, inputs: list[Any], attrs: dict[str, Any], opset: int,
              ctx: Any) -> list[Any] | None:
    """The node's outputs as numpy arrays, or None when it is not folded."""
    op = node.op_type
    if op in _NOT_FOLDED or node.domain not in ("", "ai.onnx"):
        return None
    if op == "Constant":
        return [_constant(attrs, ctx)]
    if op == "ConstantOfShape":
        shape = tuple(int(d) for d in np.asarray(inputs[0]).reshape(-1))
        value = attrs.get("value", np.zeros(1, np.float32))
        return [np.full(shape, value.reshape(-1)[0], dtype=value.dtype)]
    if op == "Identity":
        return [inputs[0]]
    if op in ("Shape", "Size"):
        return None  # the converters compute these from static shapes
    if any(v is None for v in inputs) and op not in ("Clip", "Pad", "Slice", "Resize",
                                                     "Split", "Squeeze", "ReduceSum"):
        return None
    total = sum(np.asarray(v).nbytes for v in inputs if v is not None)
    if total > 256 << 20:
        return None  # a huge fold would double the memory of the import; leave it to the IR
    return _reference(node, inputs, opset)


def _constant(attrs: dict[str, Any], ctx: Any) -> np.ndarray:
    if "value" in attrs:
        return np.asarray(attrs["value"])
    for key, dtype in (("value_float", np.float32), ("value_floats", np.float32),
                       ("value_int", np.int64), ("value_ints", np.int64)):
        if key in attrs:
            return np.asarray(attrs[key], dtype=dtype)
    raise ctx.error(f"Constant with attribute(s) {', '.join(attrs) or 'none'} is not supported"
                    " (strings and sparse tensors are not)")


def _reference(node: Any, inputs: list[Any], opset: int) -> list[Any] | None:
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    names, feeds, graph_inputs = [], {}, []
    for i, v in enumerate(inputs):
        if v is None:
            names.append("")
            continue
        a = np.asarray(v)
        n = f"in{i}"
        names.append(n)
        feeds[n] = a
        graph_inputs.append(helper.make_tensor_value_info(
            n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape))
    outs = [f"out{i}" for i in range(len(node.output))]
    n2 = helper.make_node(node.op_type, names, outs, domain=node.domain)
    n2.attribute.extend(node.attribute)
    graph = helper.make_graph([n2], "fold", graph_inputs,
                              [helper.make_empty_tensor_value_info(o) for o in outs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    try:
        results = ReferenceEvaluator(model).run(None, feeds)
    except Exception:  # an op onnx.reference lacks, or one it rejects: convert it instead
        return None
    if any(not isinstance(r, np.ndarray | np.generic) for r in results):
        return None
    return [np.asarray(r) for r in results]
