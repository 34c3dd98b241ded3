"""hal as an ``onnx.backend.base.Backend``: ``prepare`` compiles, ``run`` runs.

    from hal_onnx.backend import HalBackend
    rep = HalBackend.prepare(model, target="vmvx", driver="local-sync")
    outputs = rep.run([x])

The target and driver default to ``HAL_ONNX_TARGET`` / ``HAL_ONNX_DRIVER`` from the
environment (``vmvx`` and ``local-sync`` when unset), so ``onnx.backend.test.BackendTest``
can run the node conformance cases on any target.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx.backend.base import Backend, BackendRep

from hal_core.errors import UsageError
from hal_onnx.importer import NeedsConstantError


class HalBackendRep(BackendRep):
    """A compiled model; ``run`` takes inputs in graph order (or a dict by name).

    When a shape-deciding value (Reshape's shape, a reduction's axes, Pad's pads...) comes
    straight from a graph input, hal's static-shape IR cannot take it as an argument: the
    model is then compiled at ``run`` for the values given to those inputs (and again for
    other values), with those inputs bound as constants.
    """

    def __init__(self, model: Any, compile_fn: Any, input_names: list[str],
                 output_names: list[str]) -> None:
        self.model = model
        self.compile_fn = compile_fn
        self.input_names = input_names
        self.output_names = output_names
        self.bound: tuple[str, ...] = ()   # inputs bound as constants
        self.cache: dict[Any, Any] = {}    # bound values -> loaded module
        self.loaded = None
        try:
            self.loaded = compile_fn(model, {})
        except NeedsConstantError as e:
            self.bound = e.inputs or self._small_integer_inputs(e)

    def _small_integer_inputs(self, e: NeedsConstantError) -> tuple[str, ...]:
        """The value comes from graph inputs through other ops: bind every small integer
        input (shapes, axes, pads, counts are such), or give up with the original error."""
        inits = {t.name for t in self.model.graph.initializer}
        names = tuple(i.name for i in self.model.graph.input if i.name not in inits and
                      i.type.tensor_type.elem_type in (6, 7) and
                      all(d.HasField("dim_value") for d in i.type.tensor_type.shape.dim) and
                      int(np.prod([d.dim_value for d in i.type.tensor_type.shape.dim])) <= 64)
        if not names:
            raise e
        return names

    def _loaded_for(self, arrays: list[np.ndarray]) -> tuple[Any, list[np.ndarray]]:
        if not self.bound:
            return self.loaded, arrays
        while True:
            values = {n: arrays[self.input_names.index(n)] for n in self.bound}
            key = tuple((n, v.dtype.str, v.shape, v.tobytes()) for n, v in values.items())
            if key in self.cache:
                break
            try:
                self.cache[key] = self.compile_fn(self.model, values)
                break
            except NeedsConstantError as e:
                if not e.inputs or set(e.inputs) <= set(self.bound):
                    raise
                self.bound = tuple(dict.fromkeys(self.bound + e.inputs))
        rest = [a for n, a in zip(self.input_names, arrays) if n not in self.bound]
        return self.cache[key], rest

    def run(self, inputs: Any, **kwargs: Any) -> tuple[np.ndarray, ...]:
        if isinstance(inputs, dict):
            missing = [n for n in self.input_names if n not in inputs]
            if missing:
                raise UsageError(f"missing model input(s) {', '.join(missing)}")
            inputs = [inputs[n] for n in self.input_names]
        elif isinstance(inputs, np.ndarray):
            inputs = [inputs]
        if len(inputs) != len(self.input_names):
            raise UsageError(f"the model takes {len(self.input_names)} input(s) "
                             f"({', '.join(self.input_names)}), got {len(inputs)}")
        loaded, rest = self._loaded_for([np.asarray(x) for x in inputs])
        outs = loaded.main(*rest)
        outs = outs if isinstance(outs, tuple) else (outs,)
        return tuple(np.array(o) for o in outs)  # copies: results are views of reused buffers

    def close(self) -> None:
        for m in [self.loaded, *self.cache.values()]:
            if m is not None:
                m.close()


class HalBackend(Backend):
    @classmethod
    def prepare(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any
                ) -> HalBackendRep:
        import hal_core
        from hal_onnx.importer import import_onnx

        target = kwargs.pop("target", None) or os.environ.get("HAL_ONNX_TARGET", "vmvx")
        driver = kwargs.pop("driver", None) or os.environ.get("HAL_ONNX_DRIVER", "local-sync")
        options = kwargs.pop("importer_options", None)

        def compile_fn(m: onnx.ModelProto, constants: dict[str, np.ndarray]) -> Any:
            ir = import_onnx(m, options, constant_inputs=constants)
            return hal_core.load_module(hal_core.compile(ir, [target]), device=driver)

        inits = {t.name for t in model.graph.initializer}
        names = [i.name for i in model.graph.input if i.name not in inits]
        return HalBackendRep(model, compile_fn, names, [o.name for o in model.graph.output])

    @classmethod
    def run_model(cls, model: onnx.ModelProto, inputs: Any, device: str = "CPU",
                  **kwargs: Any) -> tuple[np.ndarray, ...]:
        rep = cls.prepare(model, device, **kwargs)
        try:
            return rep.run(inputs)
        finally:
            rep.close()

    @classmethod
    def run_node(cls, node: onnx.NodeProto, inputs: Sequence[np.ndarray], device: str = "CPU",
                 outputs_info: Any = None, **kwargs: Any) -> tuple[np.ndarray, ...]:
        """Run one node: wrapped in a one-node model whose inputs have the given arrays' types."""
        from onnx import helper

        arrays = [np.asarray(x) for x in inputs]
        graph_inputs = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype),
                                                      a.shape)
                        for n, a in zip(node.input, arrays) if n]
        graph_outputs = [helper.make_empty_tensor_value_info(n) for n in node.output if n]
        opset = kwargs.pop("opset_version", onnx.defs.onnx_opset_version())
        model = helper.make_model(
            helper.make_graph([node], "node", graph_inputs, graph_outputs),
            opset_imports=[helper.make_opsetid("", opset)])
        return cls.run_model(model, [a for n, a in zip(node.input, arrays) if n], device,
                             **kwargs)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return device.upper() == "CPU"
