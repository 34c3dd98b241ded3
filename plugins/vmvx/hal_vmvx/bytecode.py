"""The vmvx-bytecode format: Python records, FlatBuffer encoding and checked decoding.

A payload is a ``Program`` (schema: ``vmvx.fbs``) holding one ``Kernel`` per entry point. A
kernel is a list of values (views of bindings, scratch, scalars, iotas) and a flat list of
instructions, each one numpy microkernel call (see :mod:`hal_vmvx.microkernels`). The compiler
does all analysis; the loader only checks that the payload is well formed and binds handlers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hal_core.errors import ModuleFormatError

VERSION = 1
FILE_IDENTIFIER = b"VMVX"
END_MARKER = b"VMVX-END"

DTYPES: tuple[str, ...] = ("bool", "int8", "uint8", "int16", "uint16", "int32", "uint32",
                           "int64", "uint64", "float16", "float32", "float64")
DTYPE_CODE = {name: i for i, name in enumerate(DTYPES)}

VIEW, SCRATCH, SCALAR, IOTA = 0, 1, 2, 3

#: Instruction opcodes (the index is the encoded ``op``). Elementwise names are kernel IR's.
OPS: tuple[str, ...] = (
    "copy", "add", "sub", "mul", "div", "pow", "max", "min", "neg", "abs", "exp", "log", "sqrt",
    "rsqrt", "tanh", "sigmoid", "erf", "relu", "floor", "ceil", "round", "cast", "clip",
    "cmp_eq", "cmp_ne", "cmp_lt", "cmp_le", "cmp_gt", "cmp_ge", "select", "and", "or", "not",
    "reduce_sum", "reduce_prod", "reduce_max", "reduce_min",
    "matmul", "conv2d", "pool2d", "argreduce", "gather", "softmax",
)
OP_CODE = {name: i for i, name in enumerate(OPS)}

#: Largest scratch a payload may ask for (bytes); protects the loader from absurd payloads.
MAX_SCRATCH_BYTES = 1 << 31


@dataclass(frozen=True)
class Value:
    kind: int
    dtype: str
    binding: int = 0
    byte_offset: int = 0
    shape: tuple[int, ...] = ()
    strides: tuple[int, ...] = ()
    tile_axis: int = -1
    int_value: int = 0
    float_value: float = 0.0


@dataclass(frozen=True)
class Instr:
    op: str
    dst: int
    srcs: tuple[int, ...]
    ints: tuple[int, ...] = ()


@dataclass(frozen=True)
class KernelCode:
    name: str
    binding_count: int
    rows: int
    chunk_rows: int
    workgroup_count: int
    values: tuple[Value, ...]
    instrs: tuple[Instr, ...]
    quiet: bool = False
    serial: bool = False
    tail_instrs: int = 0


# ---------------------------------------------------------------------------------------------
# Encoding


def encode(kernels: list[KernelCode]) -> bytes:
    import flatbuffers

    from hal_vmvx.fb import Instr as FI
    from hal_vmvx.fb import Kernel as FK
    from hal_vmvx.fb import Program as FP
    from hal_vmvx.fb import Value as FV

    b = flatbuffers.Builder(1024)
    end_marker = b.CreateByteVector(END_MARKER)  # first object: it lands at the very end

    def vec(start, items: tuple[int, ...], prepend) -> int:
        start(b, len(items))
        for x in reversed(items):
            prepend(x)
        return b.EndVector()

    def value(v: Value) -> int:
        shape = vec(FV.ValueStartShapeVector, v.shape, b.PrependInt64)
        strides = vec(FV.ValueStartStridesVector, v.strides, b.PrependInt64)
        FV.ValueStart(b)
        FV.ValueAddKind(b, v.kind)
        FV.ValueAddDtype(b, DTYPE_CODE[v.dtype])
        FV.ValueAddBinding(b, v.binding)
        FV.ValueAddByteOffset(b, v.byte_offset)
        FV.ValueAddShape(b, shape)
        FV.ValueAddStrides(b, strides)
        FV.ValueAddTileAxis(b, v.tile_axis)
        FV.ValueAddIntValue(b, v.int_value)
        # FlatBuffers leaves out a field equal to its default, and -0.0 == 0.0: force it.
        b.ForceDefaults(math.copysign(1.0, v.float_value) < 0)
        FV.ValueAddFloatValue(b, v.float_value)
        b.ForceDefaults(False)
        return FV.ValueEnd(b)

    def instr(i: Instr) -> int:
        srcs = vec(FI.InstrStartSrcsVector, i.srcs, b.PrependInt32)
        ints = vec(FI.InstrStartIntsVector, i.ints, b.PrependInt64)
        FI.InstrStart(b)
        FI.InstrAddOp(b, OP_CODE[i.op])
        FI.InstrAddDst(b, i.dst)
        FI.InstrAddSrcs(b, srcs)
        FI.InstrAddInts(b, ints)
        return FI.InstrEnd(b)

    def offsets(start, offs: list[int]) -> int:
        start(b, len(offs))
        for o in reversed(offs):
            b.PrependUOffsetTRelative(o)
        return b.EndVector()

    kernel_offsets = []
    for k in kernels:
        name = b.CreateString(k.name)
        values = offsets(FK.KernelStartValuesVector, [value(v) for v in k.values])
        instrs = offsets(FK.KernelStartInstrsVector, [instr(i) for i in k.instrs])
        FK.KernelStart(b)
        FK.KernelAddName(b, name)
        FK.KernelAddBindingCount(b, k.binding_count)
        FK.KernelAddRows(b, k.rows)
        FK.KernelAddChunkRows(b, k.chunk_rows)
        FK.KernelAddWorkgroupCount(b, k.workgroup_count)
        FK.KernelAddValues(b, values)
        FK.KernelAddInstrs(b, instrs)
        FK.KernelAddQuiet(b, k.quiet)
        FK.KernelAddSerial(b, k.serial)
        FK.KernelAddTailInstrs(b, k.tail_instrs)
        kernel_offsets.append(FK.KernelEnd(b))
    kv = offsets(FP.ProgramStartKernelsVector, kernel_offsets)
    FP.ProgramStart(b)
    FP.ProgramAddVersion(b, VERSION)
    FP.ProgramAddKernels(b, kv)
    FP.ProgramAddEndMarker(b, end_marker)
    b.Finish(FP.ProgramEnd(b), file_identifier=FILE_IDENTIFIER)
    return bytes(b.Output())


# ---------------------------------------------------------------------------------------------
# Decoding (every field checked: a payload is untrusted input)


def _bad(what: str) -> ModuleFormatError:
    return ModuleFormatError(f"malformed vmvx-bytecode payload: {what}; recompile the module "
                             "with `hal compile --target-backends=vmvx`")


def _ints(obj, name: str, limit: int) -> tuple[int, ...]:
    n = getattr(obj, name + "Length")()
    if not 0 <= n <= limit:
        raise _bad(f"{name} vector of length {n}")
    get = getattr(obj, name)
    return tuple(int(get(i)) for i in range(n))


def decode(payload: bytes | memoryview) -> list[KernelCode]:
    """Decode and check a payload; raise ModuleFormatError for anything malformed."""
    buf = bytes(payload)
    if len(buf) < 8 or buf[4:8] != FILE_IDENTIFIER:
        raise _bad(f"expected file identifier {FILE_IDENTIFIER!r} at bytes 4..8, found "
                   f"{buf[4:8]!r} ({len(buf)} bytes)")
    try:
        return _decode(buf)
    except ModuleFormatError:
        raise
    except Exception as exc:  # noqa: BLE001 - flatbuffers raises assorted errors on corrupt offsets
        raise _bad(f"{type(exc).__name__}: {exc}") from None


def _decode(buf: bytes) -> list[KernelCode]:
    from hal_vmvx.fb.Program import Program

    limit = len(buf)  # no vector can have more elements than the payload has bytes
    prog = Program.GetRootAs(buf, 0)
    tab = prog._tab
    o = tab.Offset(8)  # end_marker
    if not o or tab.Vector(o) + len(END_MARKER) != limit or \
            buf[limit - len(END_MARKER):] != END_MARKER:
        raise _bad(f"the payload does not end with its end marker ({limit} bytes): truncated?")
    if prog.Version() != VERSION:
        raise _bad(f"bytecode version {prog.Version()}, this loader reads version {VERSION}")
    n = prog.KernelsLength()
    if not 0 < n <= limit:
        raise _bad(f"{n} kernels")
    kernels = []
    for ki in range(n):
        k = prog.Kernels(ki)
        name = (k.Name() or b"").decode("utf-8", "replace")
        nv, ni = k.ValuesLength(), k.InstrsLength()
        if not (0 <= nv <= limit and 0 <= ni <= limit):
            raise _bad(f"kernel {name!r}: {nv} values, {ni} instructions")
        values = tuple(_decode_value(k.Values(i), limit, name) for i in range(nv))
        instrs = []
        for i in range(ni):
            ins = k.Instrs(i)
            op = ins.Op()
            if op >= len(OPS):
                raise _bad(f"kernel {name!r}: unknown opcode {op}")
            srcs = _ints(ins, "Srcs", limit)
            dst = ins.Dst()
            if any(not 0 <= s < nv for s in srcs + (dst,)):
                raise _bad(f"kernel {name!r}: instruction {i} ({OPS[op]}) names a value outside "
                           f"0..{nv - 1}")
            instrs.append(Instr(OPS[op], dst, srcs, _ints(ins, "Ints", limit)))
        rows, chunk, wgc, tail = k.Rows(), k.ChunkRows(), k.WorkgroupCount(), k.TailInstrs()
        if rows < 0 or chunk < 0 or wgc < 1 or k.BindingCount() < 0 or not 0 <= tail <= ni:
            raise _bad(f"kernel {name!r}: rows={rows} chunk_rows={chunk} workgroups={wgc} "
                       f"tail={tail}")
        for v in values:
            if v.kind == VIEW and v.binding >= k.BindingCount():
                raise _bad(f"kernel {name!r}: a view of binding {v.binding}, but the kernel has "
                           f"{k.BindingCount()} bindings")
        kernels.append(KernelCode(name, k.BindingCount(), rows, chunk, wgc, values,
                                  tuple(instrs), bool(k.Quiet()), bool(k.Serial()), tail))
    return kernels


def _decode_value(v, limit: int, kname: str) -> Value:
    kind, dt = v.Kind(), v.Dtype()
    if kind > IOTA or dt >= len(DTYPES):
        raise _bad(f"kernel {kname!r}: value of kind {kind}, dtype code {dt}")
    shape = _ints(v, "Shape", limit)
    strides = _ints(v, "Strides", limit)
    tile = v.TileAxis()
    if any(d < 0 for d in shape) or not -1 <= tile < max(len(shape), 1) or len(shape) > 32:
        raise _bad(f"kernel {kname!r}: value shape {shape} with tile axis {tile}")
    if kind == VIEW and (len(strides) != len(shape) or v.Binding() < 0):
        raise _bad(f"kernel {kname!r}: view with shape {shape} and strides {strides}")
    if kind == SCRATCH and math.prod(shape) * 8 > MAX_SCRATCH_BYTES:
        raise _bad(f"kernel {kname!r}: scratch of shape {shape} is too large")
    if kind == IOTA and not (0 <= v.IntValue() < len(shape) and shape[v.IntValue()] <= limit
                             * 1024 * 1024 and math.prod(shape) == shape[v.IntValue()]):
        raise _bad(f"kernel {kname!r}: iota of shape {shape} along {v.IntValue()}")
    return Value(kind, DTYPES[dt], v.Binding(), v.ByteOffset(), shape, strides, tile,
                 v.IntValue(), v.FloatValue())
