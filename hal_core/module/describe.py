"""A JSON-serialisable summary of a module, as ``hal dump`` shows it."""

from __future__ import annotations

from typing import Any

from hal_core.module.model import Barrier, Copy, Dispatch, Fill, Function, Module

# The tensor IR's short element type names, so signatures read like the IR's tensor types.
_SHORT_DTYPES = {
    "float16": "f16", "float32": "f32", "float64": "f64", "int8": "i8", "int16": "i16",
    "int32": "i32", "int64": "i64", "uint8": "u8", "uint16": "u16", "uint32": "u32",
    "uint64": "u64", "bool": "bool", "complex64": "c64", "complex128": "c128",
}

_OP_NAMES = {Dispatch: "dispatch", Copy: "copy", Fill: "fill", Barrier: "barrier"}


def tensor_text(shape: tuple[int, ...], dtype: str) -> str:
    dims = "".join(f"{d}x" for d in shape)
    return f"tensor<{dims}{_SHORT_DTYPES.get(dtype, dtype)}>"


def signature_text(function: Function) -> str:
    """``(tensor<4xf32>, tensor<4xf32>) -> (tensor<4xf32>)``: a function's types."""
    ins = ", ".join(tensor_text(t.shape, t.dtype) for t in function.inputs)
    outs = ", ".join(tensor_text(t.shape, t.dtype) for t in function.outputs)
    return f"({ins}) -> ({outs})"


def describe(module: Module, *, file_size: int | None = None) -> dict[str, Any]:
    """Summarise ``module``: functions, executables, variants, constants and sizes.

    ``file_size`` is the size of the file the module came from; when it is not given, the size
    the module's file would have is computed (without copying constants or payloads).
    """
    if file_size is None:
        from hal_core.module.writer import serialized_size

        file_size = serialized_size(module)
    functions = []
    for f in module.functions:
        counts = {"dispatch": 0, "copy": 0, "fill": 0, "barrier": 0}
        for op in f.program:
            counts[_OP_NAMES[type(op)]] += 1
        functions.append({
            "name": f.name,
            "signature": signature_text(f),
            "inputs": [{"shape": list(t.shape), "dtype": t.dtype} for t in f.inputs],
            "outputs": [{"shape": list(t.shape), "dtype": t.dtype} for t in f.outputs],
            "host_ops": counts,
            "transient_bytes": f.transient_size,
        })
    executables = [{
        "name": exe.name,
        "variants": [{
            "target_backend": v.target_backend,
            "format": v.format,
            "features": list(v.features),
            "payload_bytes": memoryview(v.payload).nbytes,
            "entry_points": [{
                "name": ep.name,
                "workgroup_count": list(ep.workgroup_count),
                "workgroup_size": list(ep.workgroup_size),
                "binding_count": ep.binding_count,
                "constant_count": ep.constant_count,
                "scratch_bytes": ep.scratch_size,
                "constant_packs": [{"binding": p.binding, "entry_point": p.entry_point,
                                    "packed_bytes": p.packed_size} for p in ep.constant_packs],
            } for ep in v.entry_points],
        } for v in exe.variants],
    } for exe in module.executables]
    constants = [{"name": c.name, "bytes": c.size, **({"splat": bytes(c.splat).hex()}
                                                     if c.splat else {})}
                 for c in module.constants]
    return {
        "name": module.name,
        "format_version": module.version,
        "execution_model": module.execution_model.name.lower(),
        "file_bytes": file_size,
        "functions": functions,
        "executables": executables,
        "constants": constants,
        "constant_bytes": sum(c["bytes"] for c in constants),
        "peak_transient_bytes": max((f.transient_size for f in module.functions), default=0),
        "metadata": dict(module.metadata),
    }
