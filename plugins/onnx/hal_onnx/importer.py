"""ONNX model -> hal tensor IR (the ``onnx`` importer's factory).

The graph is walked in order. Each ONNX value is either a numpy array (known at import time:
initializers, Constant, and everything computed only from those: ConstantOfShape, Shape of a
static tensor, Gather on shapes, ...) or a builder Tensor. A node whose inputs are all known
is folded with numpy (:mod:`hal_onnx.fold`); any other node goes through its converter in
:mod:`hal_onnx.converters`, which builds IR ops. Shapes come from the IR's own type rules as
ops are built (the model's declared output shapes and types are checked against them);
every graph input needs a static shape (from the model or the ``input-shape`` option).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from hal_core.errors import CompileError, UsageError, VerificationError
from hal_core.ir.builder import FunctionBuilder, Tensor
from hal_core.ir.module import Module

log = logging.getLogger(__name__)

KNOWN_OPTIONS = ("input-shape",)
SUPPORTED_LIST = "plugins/onnx/README.md (section 'Supported operators')"
MIN_OPSET = 7

# ONNX TensorProto element type -> IR element type
_ONNX_DTYPES = {1: "f32", 2: "u8", 3: "i8", 4: "u16", 5: "i16", 6: "i32", 7: "i64", 9: "i1",
                10: "f16", 11: "f64", 12: "u32", 13: "u64"}


class ONNXImportError(CompileError):
    """The ONNX model cannot be imported (bad model, unsupported op, missing shapes)."""


class UnsupportedOpError(ONNXImportError):
    """An ONNX op (or an attribute value of it) the importer does not convert."""


class NeedsConstantError(UnsupportedOpError):
    """A value that decides shapes is computed at run time. ``inputs`` names the graph
    inputs it comes straight from: binding those to values (``import_onnx(...,
    constant_inputs=...)``, as :class:`hal_onnx.backend.HalBackend` does) makes it known."""

    def __init__(self, message: str, inputs: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.inputs = inputs


def ir_dtype(onnx_type: int, where: str) -> str:
    if onnx_type not in _ONNX_DTYPES:
        import onnx

        name = onnx.TensorProto.DataType.Name(onnx_type) if onnx_type in \
            onnx.TensorProto.DataType.values() else str(onnx_type)
        raise UnsupportedOpError(f"{where}: element type {name} is not supported; hal supports"
                                 f" {', '.join(sorted({onnx.TensorProto.DataType.Name(k) for k in _ONNX_DTYPES}))}")
    return _ONNX_DTYPES[onnx_type]


def parse_input_shapes(text: str) -> dict[str, tuple[int, ...]]:
    """``"x=1x3x224x224,y=4"`` (``:`` works as ``=``) -> ``{"x": (1, 3, 224, 224), "y": (4,)}``."""
    out: dict[str, tuple[int, ...]] = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        name, sep, dims = item.rpartition("=")
        if not sep:
            name, sep, dims = item.rpartition(":")
        if not sep or not name or not re.fullmatch(r"(\d+(x\d+)*)?|scalar", dims):
            raise UsageError(f"--onnx-input-shape: expected NAME=DIMS such as "
                             f"data=1x3x224x224 (several separated by commas), found {item!r}")
        out[name] = () if dims in ("", "scalar") else tuple(int(d) for d in dims.split("x"))
    return out


class Context:
    """Import state: the function being built, the ONNX values, the opset."""

    def __init__(self, fb: FunctionBuilder, opset: int) -> None:
        self.fb = fb
        self.opset = opset
        self.values: dict[str, Any] = {}  # ONNX name -> np.ndarray | Tensor
        self.node_desc = ""
        self.op_type = ""
        self.n_outputs = 1
        self.arg_names: dict[int, str] = {}  # id(IR Value) of a graph argument -> ONNX name

    def tensor(self, v: Any) -> Tensor:
        """``v`` as a Tensor (a known array becomes an IR constant)."""
        if isinstance(v, Tensor):
            return v
        a = np.asarray(v)
        return self.fb.constant(a if a.flags.c_contiguous else a.copy())

    def const(self, v: Any, what: str) -> np.ndarray:
        """``v`` must be known at import time (a shape, axes, pads...)."""
        if isinstance(v, Tensor):
            name = self.arg_names.get(id(v.value))
            raise NeedsConstantError(f"{self.node_desc}: {what} must be known at import time"
                                     " (a constant or computed from constants and shapes),"
                                     " but it is computed at run time"
                                     f"{' (graph input ' + repr(name) + ')' if name else ''};"
                                     " hal's tensor IR has static shapes",
                                     (name,) if name else ())
        return np.asarray(v)

    def error(self, msg: str) -> UnsupportedOpError:
        return UnsupportedOpError(f"{self.node_desc}: {msg}; see {SUPPORTED_LIST}")


def _attrs(node: Any) -> dict[str, Any]:
    import onnx

    out = {}
    for a in node.attribute:
        out[a.name] = onnx.helper.get_attribute_value(a)
        if a.type == onnx.AttributeProto.TENSOR:
            out[a.name] = onnx.numpy_helper.to_array(out[a.name])
        elif isinstance(out[a.name], bytes):
            out[a.name] = out[a.name].decode()
    return out


def _safe_name(name: str, used: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_.$-]", "_", name) or "input"
    out, i = base, 1
    while out in used:
        out, i = f"{base}_{i}", i + 1
    used.add(out)
    return out


def _load(source: Any) -> Any:
    import onnx

    if isinstance(source, onnx.ModelProto):
        return source
    try:
        if isinstance(source, bytes | bytearray | memoryview):
            return onnx.load_from_string(bytes(source))
        return onnx.load(os.fspath(source))
    except OSError as e:
        raise UsageError(f"cannot read the ONNX model {os.fspath(source)!r}: "
                         f"{e.strerror or e}; check the path") from None
    except Exception as e:  # protobuf's DecodeError and friends
        raise ONNXImportError(f"the file is not a valid ONNX model ({type(e).__name__}: {e})"
                              "; is it another format?") from None


def import_onnx(source: Any, options: Mapping[str, str] | None = None, *,
                constant_inputs: Mapping[str, Any] | None = None) -> Module:
    """Import an ONNX model (a path, bytes or ``onnx.ModelProto``) as a Module with @main.

    ``constant_inputs`` binds graph inputs to values: they become constants, not arguments
    (the model is specialised for them)."""
    from hal_core.ir.builder import Builder

    options = dict(options or {})
    unknown = sorted(set(options) - set(KNOWN_OPTIONS))
    if unknown:
        raise UsageError(f"importer 'onnx' has no option {unknown[0]!r}; it knows "
                         f"{', '.join(KNOWN_OPTIONS)} (--onnx-input-shape=NAME=1x3x224x224)")
    shapes = parse_input_shapes(options.get("input-shape", ""))
    model = _load(source)
    fn = convert_model(model, shapes, constant_inputs or {})
    b = Builder()
    b.add(fn)
    return b.module()


def model_opset(model: Any) -> int:
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            return o.version
    return MIN_OPSET if not model.opset_import else 1


def convert_model(model: Any, shapes: Mapping[str, tuple[int, ...]],
                  constant_inputs: Mapping[str, Any] | None = None) -> Any:
    """Convert ``model.graph`` into an IR Function ``@main``."""
    import onnx

    from hal_onnx.converters import CONVERTERS
    from hal_onnx.fold import fold_node

    opset = model_opset(model)
    if opset < MIN_OPSET:
        raise ONNXImportError(f"the model uses opset {opset}; hal imports opsets {MIN_OPSET} "
                              "and newer: upgrade it with onnx.version_converter")
    for o in model.opset_import:
        if o.domain not in ("", "ai.onnx") and any(n.domain == o.domain for n in model.graph.node):
            raise UnsupportedOpError(f"the model uses ops of the domain {o.domain!r}; hal "
                                     f"imports only the default ONNX domain; see {SUPPORTED_LIST}")
    graph = model.graph
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}
    for t in graph.sparse_initializer:
        raise UnsupportedOpError(f"sparse initializer {t.values.name!r} is not supported")
    try:
        onnx.checker.check_model(model) if model.ByteSize() < 2_000_000_000 else None
    except onnx.checker.ValidationError as e:
        first = str(e).splitlines()[0]
        if not ("is required but missing" in first and ("Field 'shape'" in first or
                                                        "Field 'type' of 'value_info'" in first)):
            raise ONNXImportError(f"the ONNX model is invalid: {first}") from None
        # outputs without a declared type or shape (common in exported models): hal infers them
        log.info("onnx.checker: %s (ignored: hal infers the shapes)", first)
    for name, value in (constant_inputs or {}).items():
        inits[name] = np.asarray(value)
    runtime_inputs = [i for i in graph.input if i.name not in inits]
    stray = sorted(set(shapes) - {i.name for i in runtime_inputs})
    if stray:
        raise UsageError(f"--onnx-input-shape names {stray[0]!r}, which is not an input of the"
                         f" model; its inputs are {', '.join(i.name for i in runtime_inputs)}")
    fb = FunctionBuilder("main")
    ctx = Context(fb, opset)
    used: set[str] = set()
    for i in runtime_inputs:
        tt = i.type.tensor_type
        if not i.type.HasField("tensor_type"):
            raise UnsupportedOpError(f"graph input {i.name!r} is not a tensor (sequence/map/"
                                     "optional inputs are not supported)")
        dtype = ir_dtype(tt.elem_type, f"graph input {i.name!r}")
        if i.name in shapes:
            shape = shapes[i.name]
            if tt.HasField("shape"):
                dims = tt.shape.dim
                bad = len(dims) != len(shape) or any(
                    d.HasField("dim_value") and d.dim_value != s for d, s in zip(dims, shape))
                if bad:
                    raise UsageError(f"--onnx-input-shape {i.name}={'x'.join(map(str, shape))}"
                                     f" does not match the model's shape {_dims_text(tt)}")
        else:
            if not tt.HasField("shape"):
                raise ONNXImportError(f"graph input {i.name!r} has no shape in the model; give"
                                      f" one with --onnx-input-shape={i.name}=DIMS (or "
                                      "importer_options={'input-shape': ...})")
            if any(not d.HasField("dim_value") for d in tt.shape.dim):
                raise ONNXImportError(
                    f"graph input {i.name!r} has the dynamic shape {_dims_text(tt)}; hal "
                    f"compiles static shapes: give one with --onnx-input-shape={i.name}="
                    f"{'x'.join(str(d.dim_value) if d.HasField('dim_value') else 'N' for d in tt.shape.dim)}"
                    " (N replaced by a number), or importer_options={'input-shape': ...} in"
                    " hal_core.compile")
            shape = tuple(d.dim_value for d in tt.shape.dim)
        ctx.values[i.name] = fb.arg(_safe_name(i.name, used), shape, dtype)
        ctx.arg_names[id(ctx.values[i.name].value)] = i.name
    ctx.values.update(inits)
    ctx.values[""] = None
    for idx, node in enumerate(graph.node):
        name = node.name or f"#{idx}"
        ctx.node_desc = (f"ONNX node {name!r} (op {node.op_type}"
                         f"{', domain ' + node.domain if node.domain else ''}, opset {opset})")
        ctx.op_type, ctx.n_outputs = node.op_type, len(node.output)
        inputs = []
        for n in node.input:
            if n not in ctx.values:
                raise ONNXImportError(f"{ctx.node_desc}: input {n!r} is not produced by any "
                                      "earlier node, initializer or graph input")
            inputs.append(ctx.values[n])
        attrs = _attrs(node)
        outs = None
        if all(not isinstance(v, Tensor) for v in inputs):
            outs = fold_node(node, inputs, attrs, opset, ctx)
        if outs is None:
            conv = CONVERTERS.get(node.op_type)
            if conv is None or node.domain not in ("", "ai.onnx"):
                raise UnsupportedOpError(
                    f"{ctx.node_desc}: the op {node.op_type} is not supported by hal's ONNX "
                    f"importer; the supported ops are listed in {SUPPORTED_LIST}")
            try:
                outs = conv(ctx, inputs, attrs)
            except VerificationError as e:
                raise ONNXImportError(f"{ctx.node_desc}: {e}") from None
        if not isinstance(outs, list | tuple):
            outs = [outs]
        for o_name, o in zip(node.output, outs):
            if o_name:
                ctx.values[o_name] = o
        if len(node.output) > len(outs) and any(node.output[len(outs):]):
            raise ctx.error(f"only the first {len(outs)} output(s) are supported, the model "
                            f"uses {', '.join(n for n in node.output[len(outs):] if n)}")
    results = []
    for o in graph.output:
        v = ctx.values.get(o.name)
        if v is None:
            raise ONNXImportError(f"graph output {o.name!r} is not produced by any node")
        t = ctx.tensor(v)
        if o.type.HasField("tensor_type") and o.type.tensor_type.elem_type:
            want = ir_dtype(o.type.tensor_type.elem_type, f"graph output {o.name!r}")
            if want != t.dtype:
                raise ONNXImportError(f"graph output {o.name!r}: the model declares {want}, "
                                      f"the import computed {t.dtype} (a converter bug)")
            dims = o.type.tensor_type.shape.dim if o.type.tensor_type.HasField("shape") else None
            if dims is not None and all(d.HasField("dim_value") for d in dims) and \
                    tuple(d.dim_value for d in dims) != t.shape and not shapes:
                raise ONNXImportError(f"graph output {o.name!r}: the model declares the shape "
                                      f"{_dims_text(o.type.tensor_type)}, the import computed "
                                      f"{'x'.join(map(str, t.shape)) or 'scalar'}")
        results.append(t)
    fb.ret(*results)
    return fb.build()


def _dims_text(tt: Any) -> str:
    return "x".join(str(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?")
                    for d in tt.shape.dim) or "scalar"
