"""Read and verify ``.halm`` module files.

Verification happens at load, in this order: magic, format version, header fields and the
bounds of the FlatBuffer and data section, the content digest, then the FlatBuffer itself.
flatbuffers' Python reader does not verify anything and fails on crafted offsets with arbitrary
exceptions, so decoding is wrapped (any exception becomes :class:`ModuleFormatError`), every
vector is bounded by a budget proportional to the FlatBuffer's size (so a crafted length or
shared sub-objects cannot make the reader allocate or spin), and the decoded module goes through
the same semantic checks as the writer's (:mod:`hal_core.module.validate`).

Zero copy: constants' ``data`` and variants' ``payload`` in the returned module are read-only
``memoryview`` slices of the input (of the memory map for :func:`load_module_file`), 64-byte
aligned within the file. They stay valid as long as they are referenced; the map is closed when
the last of them goes away. Call ``bytes(view)`` for a private copy.
"""

from __future__ import annotations

import logging
import mmap
import os

from hal_core.errors import HalError, IncompatibleModuleError, ModuleFormatError
from hal_core.module import layout
from hal_core.module.describe import describe
from hal_core.module.model import (
    FORMAT_VERSION,
    Barrier,
    BufferRef,
    Constant,
    ConstantPack,
    Copy,
    Dispatch,
    Executable,
    ExecutionModel,
    Fill,
    Function,
    Module,
    Slot,
    TensorType,
    Variant,
    VariantEntryPoint,
)
from hal_core.module.schema.generated import BarrierOp, CopyOp, DispatchOp, FillOp, HostOp
from hal_core.module.schema.generated.Module import Module as FbModule
from hal_core.module.validate import check_module

__all__ = ["describe", "load_module_file", "parse_module_bytes"]

log = logging.getLogger(__name__)

_RECOMPILE = "recompile the module with `hal compile` (the file is truncated or corrupted)"


def load_module_file(path: str | os.PathLike[str]) -> Module:
    """Memory-map and verify the module file at ``path``; constants and payloads are zero-copy."""
    source = os.fspath(path)
    try:
        with open(source, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < layout.HEADER_SIZE:  # mmap refuses empty files; short ones need no map
                data: bytes | mmap.mmap = f.read()
            else:
                data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError as e:
        raise ModuleFormatError(
            f"{source}: cannot read the module file ({e.strerror or e}); check the path") from None
    return parse_module_bytes(data, source=source)


def parse_module_bytes(data: bytes | bytearray | memoryview | mmap.mmap, *,
                       source: str = "<bytes>") -> Module:
    """Verify and decode a module held in memory; ``source`` names it in error messages."""
    view = memoryview(data).cast("B").toreadonly()
    header = _verify_header(view, source)
    fb = bytes(view[header.fb_offset:header.fb_offset + header.fb_length])
    payloads = view[header.data_offset:header.data_offset + header.data_length]
    decoder = _Decoder(fb, payloads, source)
    try:
        module = decoder.module()
    except HalError:
        raise
    except Exception as e:  # noqa: BLE001 - flatbuffers fails on bad offsets with anything
        raise ModuleFormatError(
            f"{source}: the module's FlatBuffer is malformed: {_qualified(type(e))} "
            f"({str(e)[:200]}) while reading {decoder.what}; {_RECOMPILE}") from None
    if module.version != header.version:
        raise ModuleFormatError(
            f"{source}: the header says format version {header.version} but the FlatBuffer "
            f"says {module.version}; {_RECOMPILE}")
    check_module(module, source, _RECOMPILE)
    log.debug("loaded module %r from %s (%d bytes)", module.name, source, view.nbytes)
    return module


def _qualified(kind: type) -> str:
    return kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"


def _verify_header(view: memoryview, source: str) -> layout.Header:
    size = view.nbytes
    magic = bytes(view[:4])
    if magic != layout.MAGIC[:len(magic)] or size == 0:
        raise ModuleFormatError(
            f"{source}: not a hal module file: expected the magic bytes {layout.MAGIC!r}, "
            f"found {magic!r}; pass a .halm file made by `hal compile`")
    if size < 8:
        raise ModuleFormatError(f"{source}: file is truncated: {size} bytes, shorter than a "
                                f"module header ({layout.HEADER_SIZE} bytes); {_RECOMPILE}")
    version = int.from_bytes(view[4:8], "little")
    if version > FORMAT_VERSION:
        raise IncompatibleModuleError(
            f"{source}: the module has format version {version}, but this hal reads version "
            f"{FORMAT_VERSION} at most; upgrade hal, or recompile the module with this hal's "
            "`hal compile`")
    if version < 1:
        raise ModuleFormatError(f"{source}: format version must be 1..{FORMAT_VERSION}, found "
                                f"{version}; {_RECOMPILE}")
    if size < layout.HEADER_SIZE:
        raise ModuleFormatError(f"{source}: file is truncated: {size} bytes, shorter than a "
                                f"module header ({layout.HEADER_SIZE} bytes); {_RECOMPILE}")
    h = layout.Header.unpack(view)

    def expect(ok: bool, what: str) -> None:
        if not ok:
            raise ModuleFormatError(f"{source}: bad module header: {what}; {_RECOMPILE}")

    if h.total_length > size:
        raise ModuleFormatError(f"{source}: file is truncated: the header says {h.total_length} "
                                f"bytes, found {size}; {_RECOMPILE}")
    expect(h.total_length == size, f"expected {h.total_length} bytes as the header says, "
           f"found {size} (trailing bytes)")
    expect(h.flags == 0, f"expected flags 0, found {h.flags:#x}")
    expect(h.header_size == layout.HEADER_SIZE,
           f"expected header size {layout.HEADER_SIZE}, found {h.header_size}")
    expect(h.fb_offset >= layout.HEADER_SIZE and h.fb_length >= 8
           and h.fb_offset + h.fb_length <= h.data_offset,
           f"FlatBuffer at [{h.fb_offset}, +{h.fb_length}) must lie between the header and the "
           f"data section at {h.data_offset}")
    expect(h.data_offset % layout.ALIGNMENT == 0,
           f"data section offset {h.data_offset} must be a multiple of {layout.ALIGNMENT}")
    expect(h.data_offset + h.data_length == size,
           f"data section [{h.data_offset}, +{h.data_length}) must end at the end of the "
           f"file ({size} bytes)")
    digest = layout.content_digest(view)
    if digest != h.digest:
        raise ModuleFormatError(
            f"{source}: content hash mismatch: the header records {h.digest.hex()[:16]}..., "
            f"the file hashes to {digest.hex()[:16]}...; {_RECOMPILE}")
    return h


class _Decoder:
    """Turns the FlatBuffer into model objects, bounding all the work by the buffer's size."""

    def __init__(self, fb: bytes, payloads: memoryview, source: str) -> None:
        self.fb = fb
        self.payloads = payloads
        self.source = source
        # An honest FlatBuffer stores every table, vector and string in distinct bytes, so the
        # bytes charged below never exceed its size; a crafted one that reuses sub-objects to
        # multiply the work runs out of budget instead.
        self.budget = len(fb)
        self.what = "the module header"

    def fail(self, what: str) -> None:
        raise ModuleFormatError(f"{self.source}: {what} (while reading {self.what}); "
                                f"{_RECOMPILE}")

    def charge(self, n: int) -> None:
        self.budget -= n
        if self.budget < 0:
            self.fail(f"the FlatBuffer refers to more data than its {len(self.fb)} bytes hold")

    def count(self, n: int, element_size: int) -> range:
        self.charge(4 + n * element_size)
        return range(n)

    def text(self, raw: bytes | None, what: str) -> str:
        if raw is None:
            self.fail(f"{what} is missing")
        self.charge(4 + len(raw))
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            self.fail(f"{what} must be UTF-8 text, found {raw[:40]!r}")

    def data(self, ref, what: str) -> memoryview:
        if ref is None:
            self.fail(f"{what} reference is missing")
        offset, length = ref.Offset(), ref.Length()
        if offset % layout.ALIGNMENT or offset + length > self.payloads.nbytes:
            self.fail(f"{what} [{offset}, +{length}) must start at a multiple of "
                      f"{layout.ALIGNMENT} within the {self.payloads.nbytes}-byte data section")
        return self.payloads[offset:offset + length]

    def module(self) -> Module:
        fb = self.fb
        if not FbModule.ModuleBufferHasIdentifier(fb, 0):
            self.fail(f"expected the FlatBuffer identifier b'HALF', found {fb[4:8]!r}")
        m = FbModule.GetRootAs(fb, 0)
        self.charge(4)
        name = self.text(m.Name(), "the module name")
        model = m.ExecutionModel()
        if model not in ExecutionModel._value2member_map_:
            self.fail(f"execution model must be one of {[e.value for e in ExecutionModel]}, "
                      f"found {model}")
        metadata = {}
        for i in self.count(m.MetadataLength(), 4):
            self.what = f"metadata entry {i}"
            kv = m.Metadata(i)
            self.charge(4)
            metadata[self.text(kv.Key(), "the key")] = self.text(kv.Value(), "the value")
        constants = []
        for i in self.count(m.ConstantsLength(), 4):
            self.what = f"constant {i}"
            c = m.Constants(i)
            self.charge(4)
            cname = self.text(c.Name(), "the name")
            splat = bytes(c.Splat(k) for k in self.count(c.SplatLength(), 1))
            constants.append(Constant(cname, self.data(c.Data(), "its data"), splat,
                                      c.SplatSize() if splat else 0))
        executables = tuple(self.executable(m.Executables(i), i)
                            for i in self.count(m.ExecutablesLength(), 4))
        functions = tuple(self.function(m.Functions(i), i)
                          for i in self.count(m.FunctionsLength(), 4))
        return Module(name=name, functions=functions, executables=executables,
                      constants=tuple(constants), execution_model=ExecutionModel(model),
                      version=m.Version(), metadata=metadata)

    def executable(self, e, i: int) -> Executable:
        self.what = f"executable {i}"
        self.charge(4)
        name = self.text(e.Name(), "its name")
        variants = []
        for v in self.count(e.VariantsLength(), 4):
            self.what = f"executable {i} variant {v}"
            fv = e.Variants(v)
            self.charge(4)
            backend = self.text(fv.TargetBackend(), "the target backend")
            fmt = self.text(fv.Format(), "the format")
            features = tuple(self.text(fv.Features(k), "a feature")
                             for k in self.count(fv.FeaturesLength(), 4))
            entry_points = []
            for k in self.count(fv.EntryPointsLength(), 4):
                self.what = f"executable {i} variant {v} entry point {k}"
                ep = fv.EntryPoints(k)
                self.charge(4)
                entry_points.append(VariantEntryPoint(
                    name=self.text(ep.Name(), "its name"),
                    workgroup_count=self.dim3(ep.WorkgroupCount(), "workgroup count"),
                    workgroup_size=self.dim3(ep.WorkgroupSize(), "workgroup size"),
                    binding_count=ep.BindingCount(), constant_count=ep.ConstantCount(),
                    scratch_size=ep.ScratchSize(),
                    constant_packs=tuple(self.constant_pack(ep.ConstantPacks(j))
                                         for j in self.count(ep.ConstantPacksLength(), 4))))
            self.what = f"executable {i} variant {v}"
            variants.append(Variant(backend, fmt, features, tuple(entry_points),
                                    self.data(fv.Payload(), "its payload")))
        return Executable(name, tuple(variants))

    def constant_pack(self, p) -> ConstantPack:
        self.charge(4)
        return ConstantPack(p.Binding(), p.EntryPoint(), p.PackedSize())

    def dim3(self, d, what: str) -> tuple[int, int, int]:
        if d is None:
            self.fail(f"the {what} is missing")
        return (d.X(), d.Y(), d.Z())

    def function(self, f, i: int) -> Function:
        self.what = f"function {i}"
        self.charge(4)
        name = self.text(f.Name(), "its name")
        inputs = tuple(self.tensor(f.Inputs(k), f"function {name!r} input {k}")
                       for k in self.count(f.InputsLength(), 4))
        outputs = tuple(self.tensor(f.Outputs(k), f"function {name!r} output {k}")
                        for k in self.count(f.OutputsLength(), 4))
        program = tuple(self.host_op(f.Program(k), f"function {name!r} op {k}")
                        for k in self.count(f.ProgramLength(), 4))
        return Function(name, inputs, outputs, program, f.TransientSize())

    def tensor(self, t, what: str) -> TensorType:
        self.what = what
        self.charge(4)
        shape = tuple(t.Shape(k) for k in self.count(t.ShapeLength(), 8))
        return TensorType(shape, self.text(t.Dtype(), "the dtype"))

    def buffer_ref(self, r) -> BufferRef:
        if r is None:
            self.fail("a buffer reference is missing")
        slot = r.Slot()
        if slot not in Slot._value2member_map_:
            self.fail(f"buffer slot must be one of {[s.value for s in Slot]}, found {slot}")
        return BufferRef(Slot(slot), r.Index(), r.Offset(), r.Length())

    def host_op(self, entry, what: str):
        self.what = what
        self.charge(4)
        kind, table = entry.OpType(), entry.Op()
        if table is None:
            self.fail(f"host op kind {kind} has no body")
        self.charge(4)
        if kind == HostOp.HostOp.DispatchOp:
            op = DispatchOp.DispatchOp()
            op.Init(table.Bytes, table.Pos)
            bindings = tuple(self.buffer_ref(op.Bindings(k))
                             for k in self.count(op.BindingsLength(), 24))
            constants = tuple(op.Constants(k) for k in self.count(op.ConstantsLength(), 8))
            return Dispatch(op.Executable(), op.EntryPoint(), bindings, constants)
        if kind == HostOp.HostOp.CopyOp:
            op = CopyOp.CopyOp()
            op.Init(table.Bytes, table.Pos)
            return Copy(self.buffer_ref(op.Source()), self.buffer_ref(op.Target()))
        if kind == HostOp.HostOp.FillOp:
            op = FillOp.FillOp()
            op.Init(table.Bytes, table.Pos)
            pattern = bytes(op.Pattern(k) for k in self.count(op.PatternLength(), 1))
            return Fill(self.buffer_ref(op.Target()), pattern)
        if kind == HostOp.HostOp.BarrierOp:
            BarrierOp.BarrierOp().Init(table.Bytes, table.Pos)
            return Barrier()
        self.fail(f"host op kind must be 1..4 (dispatch, copy, fill, barrier), found {kind}")
