"""The ``example-program`` executable format: what the target writes and the device reads.

A payload is UTF-8 JSON (non-finite floats written as ``NaN``/``Infinity``, as Python's json
module does)::

    {"format": "example-program", "version": 1, "kernels": [KERNEL, ...]}

Kernel i is entry point i. A KERNEL runs one or more *stages* per workgroup, in order; each
stage is a loop nest over an iteration space with a scalar body, after the kernel IR's
GenericKernel, but with every indexing map already folded into an *access descriptor*: where
element ``p`` of the iteration space lives in memory::

    {"name": "k0",
     "tile_dim": 0, "tile": 2,    # workgroup w runs points p[tile_dim] in [w*tile, (w+1)*tile)
                                  # of every stage (null: one workgroup runs everything)
     "scratch": [BYTES, ...],     # device memory private to one dispatch, between stages
     "stages": [STAGE, ...]}

    STAGE = {"space": [4, 8],          # iteration space
             "reduce": [1],            # reduction dims (the others are parallel)
             "operands": [ACCESS, ...],
             "inputs": [0, 1],         # operand numbers read by ["in", i]
             "outputs": [2],           # operand numbers written by yields[k]
             "code": [OP, ...],        # SSA: OP j is referred to as ["val", j]
             "yields": [REF, ...],     # one value per output
             "combiners": ["sum"],     # per output: sum|prod|max|min (null without "reduce")
             "final": null}            # or {"inputs": [...], "code": [...], "yields": [...]}

    ACCESS = {"binding": B, "dtype": "float32", "offset": BYTES, "strides": [BYTES per dim]}
    OP     = [opcode, result dtype, REF, ...]          (opcodes: hal_core's kernel IR OPCODES)
    REF    = ["in", i] | ["val", j] | ["const", value, dtype] | ["idx", dim] | ["acc", k]

The element of an operand at point ``p`` is the ``dtype`` value at byte
``offset + sum(strides[d] * p[d])`` of binding ``B`` of the dispatch, or of scratch buffer
``-1 - B`` when ``B`` is negative (a stride may be 0, a broadcast, or negative, a reversed
slice). An output's strides along reduction dims are 0. ``final`` runs after the reduction,
over the space with the reduction dims collapsed to 1; its ``["acc", k]`` is output k's
accumulator, its ``["in", i]`` reads ``final.inputs[i]``. The tile dim is a parallel dim of
the same extent in every stage, so a workgroup's stages touch only its own slice.

:func:`decode` checks the structure of a payload and raises ModuleFormatError naming what is
wrong, so a corrupted payload never reaches the interpreter.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hal_core.compiler.kernel_ir import COMBINERS, DTYPES, OPCODES
from hal_core.errors import ModuleFormatError

FORMAT = "example-program"
VERSION = 1

Ref = tuple  # ("in", i) | ("val", j) | ("const", value, dtype) | ("idx", d) | ("acc", k)


@dataclass(frozen=True)
class Access:
    binding: int
    dtype: str
    offset: int
    strides: tuple[int, ...]


@dataclass(frozen=True)
class Body:
    inputs: tuple[int, ...]
    code: tuple[tuple, ...]     # (opcode, dtype, *refs)
    yields: tuple[Ref, ...]


@dataclass(frozen=True)
class Stage:
    space: tuple[int, ...]
    reduce: tuple[int, ...]
    operands: tuple[Access, ...]
    outputs: tuple[int, ...]
    body: Body
    combiners: tuple[str | None, ...]
    final: Body | None


@dataclass(frozen=True)
class ProgramKernel:
    name: str
    tile_dim: int | None
    tile: int
    scratch: tuple[int, ...]
    stages: tuple[Stage, ...]

    @property
    def workgroups(self) -> int:
        if self.tile_dim is None:
            return 1
        return -(-self.stages[0].space[self.tile_dim] // self.tile)


# -- writing -------------------------------------------------------------------------------------


def _body_json(body: Body) -> dict[str, Any]:
    return {"inputs": list(body.inputs), "code": [list(op) for op in body.code],
            "yields": [list(r) for r in body.yields]}


def _stage_json(st: Stage) -> dict[str, Any]:
    return {"space": list(st.space), "reduce": list(st.reduce),
            "operands": [{"binding": a.binding, "dtype": a.dtype, "offset": a.offset,
                          "strides": list(a.strides)} for a in st.operands],
            "outputs": list(st.outputs), **_body_json(st.body),
            "combiners": list(st.combiners),
            "final": None if st.final is None else _body_json(st.final)}


def encode(kernels: list[ProgramKernel]) -> bytes:
    """The payload bytes of ``kernels`` (kernel i = entry point i)."""
    out = [{"name": k.name, "tile_dim": k.tile_dim, "tile": k.tile, "scratch": list(k.scratch),
            "stages": [_stage_json(st) for st in k.stages]} for k in kernels]
    doc = {"format": FORMAT, "version": VERSION, "kernels": out}
    return json.dumps(doc, separators=(",", ":")).encode()


# -- reading -------------------------------------------------------------------------------------


class _Bad(Exception):
    pass


def _int(x: Any, what: str, lo: int = 0) -> int:
    if not isinstance(x, int) or isinstance(x, bool) or x < lo:
        raise _Bad(f"{what} must be an int >= {lo}, found {x!r}")
    return x


def _ints(x: Any, what: str, lo: int = 0, n: int | None = None) -> tuple[int, ...]:
    if not isinstance(x, list) or (n is not None and len(x) != n):
        raise _Bad(f"{what} must be a list{'' if n is None else f' of {n}'} ints, found {x!r}")
    return tuple(_int(v, what, lo) for v in x)


def _ref(r: Any, what: str, n_in: int, n_vals: int, rank: int, n_acc: int) -> Ref:
    if not isinstance(r, list) or not r:
        raise _Bad(f"{what}: a value reference is a list like ['in', 0], found {r!r}")
    kind = r[0]
    limits = {"in": n_in, "val": n_vals, "idx": rank, "acc": n_acc}
    if kind in limits and len(r) == 2:
        i = _int(r[1], f"{what} {kind}")
        if i >= limits[kind]:
            raise _Bad(f"{what}: {kind} {i} out of range (have {limits[kind]})")
        return (kind, i)
    if kind == "const" and len(r) == 3 and r[2] in DTYPES and isinstance(r[1], (int, float)):
        return ("const", r[1], r[2])
    raise _Bad(f"{what}: unknown value reference {r!r}")


def _body(doc: Any, what: str, n_operands: int, rank: int, n_acc: int) -> Body:
    inputs = _ints(doc.get("inputs"), f"{what} inputs")
    if any(i >= n_operands for i in inputs):
        raise _Bad(f"{what} inputs {list(inputs)} name operands beyond the {n_operands} declared")
    code = []
    if not isinstance(doc.get("code"), list):
        raise _Bad(f"{what} code must be a list of ops")
    for j, op in enumerate(doc["code"]):
        if (not isinstance(op, list) or len(op) < 2 or op[0] not in OPCODES
                or op[1] not in DTYPES or len(op) - 2 != OPCODES[op[0]]):
            raise _Bad(f"{what} op {j}: expected [opcode, dtype, args...] with a known opcode "
                       f"and its argument count, found {op!r}")
        refs = tuple(_ref(r, f"{what} op {j}", len(inputs), j, rank, n_acc) for r in op[2:])
        code.append((op[0], op[1], *refs))
    if not isinstance(doc.get("yields"), list):
        raise _Bad(f"{what} yields must be a list")
    yields = tuple(_ref(r, f"{what} yield", len(inputs), len(code), rank, n_acc)
                   for r in doc["yields"])
    return Body(inputs, tuple(code), yields)


def _stage(doc: Any, what: str, n_scratch: int) -> Stage:
    if not isinstance(doc, dict):
        raise _Bad(f"{what} must be an object, found {type(doc).__name__}")
    space = _ints(doc.get("space"), f"{what} space")
    rank = len(space)
    reduce = _ints(doc.get("reduce"), f"{what} reduce")
    if any(d >= rank for d in reduce):
        raise _Bad(f"{what}: reduce dims {list(reduce)} outside the rank-{rank} space")
    operands = []
    for i, a in enumerate(doc.get("operands") or []):
        if not isinstance(a, dict) or a.get("dtype") not in DTYPES:
            raise _Bad(f"{what} operand {i}: expected binding, dtype, offset, strides; found {a!r}")
        operands.append(Access(_int(a.get("binding"), f"{what} operand {i} binding", -n_scratch),
                               a["dtype"], _int(a.get("offset"), f"{what} operand {i} offset"),
                               _ints(a.get("strides"), f"{what} operand {i} strides",
                                     lo=-(1 << 62), n=rank)))
    outputs = _ints(doc.get("outputs"), f"{what} outputs")
    if any(o >= len(operands) for o in outputs):
        raise _Bad(f"{what}: outputs {list(outputs)} name operands beyond the {len(operands)}")
    body = _body(doc, what, len(operands), rank, 0)
    if len(body.yields) != len(outputs):
        raise _Bad(f"{what}: {len(body.yields)} yields for {len(outputs)} outputs")
    combiners = doc.get("combiners")
    allowed = COMBINERS if reduce else (None,)
    if (not isinstance(combiners, list) or len(combiners) != len(outputs)
            or any(c not in allowed for c in combiners)):
        raise _Bad(f"{what}: combiners must give one of {COMBINERS} per output when the stage "
                   f"reduces (and null otherwise), found {combiners!r}")
    final = doc.get("final")
    if final is not None:
        if not isinstance(final, dict):
            raise _Bad(f"{what}: final must be an object or null")
        final = _body(final, f"{what} final", len(operands), rank, len(outputs))
        if len(final.yields) != len(outputs):
            raise _Bad(f"{what}: final has {len(final.yields)} yields for {len(outputs)} outputs")
    return Stage(space, reduce, tuple(operands), outputs, body, tuple(combiners), final)


def _kernel(doc: Any, index: int) -> ProgramKernel:
    if not isinstance(doc, dict) or not isinstance(doc.get("name"), str):
        raise _Bad(f"kernel {index} must be an object with a name, found {doc!r:.80}")
    what = f"kernel {doc['name']!r}"
    scratch = _ints(doc.get("scratch"), f"{what} scratch")
    stages = doc.get("stages")
    if not isinstance(stages, list) or not stages:
        raise _Bad(f"{what}: stages must be a non-empty list")
    stages = tuple(_stage(st, f"{what} stage {i}", len(scratch)) for i, st in enumerate(stages))
    tile_dim = doc.get("tile_dim")
    if tile_dim is not None:
        _int(tile_dim, f"{what} tile_dim")
        extents = {st.space[tile_dim] if tile_dim < len(st.space) and tile_dim not in st.reduce
                   else None for st in stages}
        if None in extents or len(extents) != 1:
            raise _Bad(f"{what}: tile_dim {tile_dim} must be a parallel dim of one extent in "
                       f"every stage")
    tile = _int(doc.get("tile"), f"{what} tile", 1)
    return ProgramKernel(doc["name"], tile_dim, tile, scratch, stages)


def decode(payload: bytes | memoryview) -> list[ProgramKernel]:
    """The kernels of a payload; ModuleFormatError if it is not a valid example-program."""
    try:
        doc = json.loads(bytes(payload).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ModuleFormatError(f"{FORMAT} payload of {len(payload)} bytes is not JSON ({e}); "
                                f"recompile with --target-backends=example") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ModuleFormatError(f"payload is not an {FORMAT} (its 'format' field is "
                                f"{doc.get('format') if isinstance(doc, dict) else None!r})")
    if doc.get("version") != VERSION:
        raise ModuleFormatError(f"{FORMAT} version {doc.get('version')!r} is not supported: this "
                                f"driver reads version {VERSION}; recompile the module with the "
                                f"installed example target")
    try:
        return [_kernel(k, i) for i, k in enumerate(doc.get("kernels") or [])]
    except _Bad as e:
        raise ModuleFormatError(f"malformed {FORMAT} payload: {e}") from None
