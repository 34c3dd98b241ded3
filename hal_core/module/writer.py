"""Serialise a :class:`~hal_core.module.model.Module` into a ``.halm`` file.

Layout: see :mod:`hal_core.module.layout`; FlatBuffer schema: ``schema/module.fbs``.
"""

from __future__ import annotations

import hashlib
import logging
import os
from typing import BinaryIO

import flatbuffers

from hal_core.errors import ModuleFormatError
from hal_core.module import layout
from hal_core.module.model import (
    FORMAT_VERSION,
    Barrier,
    BufferRef,
    Copy,
    Dispatch,
    Fill,
    Module,
)
from hal_core.module.schema.generated import (
    ConstantPack,
    BarrierOp,
    Constant,
    CopyOp,
    DispatchOp,
    EntryPoint,
    Executable,
    FillOp,
    Function,
    HostOp,
    HostOpEntry,
    KeyValue,
    TensorType,
    Variant,
)
from hal_core.module.schema.generated import Module as FbModule
from hal_core.module.schema.generated.BufferRef import CreateBufferRef
from hal_core.module.schema.generated.DataRef import CreateDataRef
from hal_core.module.schema.generated.Dim3 import CreateDim3
from hal_core.module.validate import check_module

log = logging.getLogger(__name__)

_FILE_IDENTIFIER = b"HALF"


def serialize_module(module: Module) -> bytes:
    """The bytes of the ``.halm`` file for ``module`` (validated first)."""
    header, pieces = _file_pieces(module)
    return b"".join([header, *pieces])


def _file_pieces(module: Module) -> tuple[bytes, list[bytes | memoryview]]:
    """The sealed header and the rest of the file as a list of pieces: the FlatBuffer, zero
    padding and views of the constants and payloads themselves. Writing them one by one never
    copies a constant (they can be most of a large module); the digest is computed over the
    same pieces."""
    fb, blobs, data_length = _plan(module)
    fb_offset = layout.HEADER_SIZE
    data_offset = layout.align(fb_offset + len(fb))
    total = data_offset + data_length
    pieces: list[bytes | memoryview] = [fb, bytes(data_offset - fb_offset - len(fb))]
    cursor = 0
    for offset, view in blobs:
        if offset > cursor:
            pieces.append(bytes(offset - cursor))
        pieces.append(view)
        cursor = offset + view.nbytes
    blank = layout.Header(FORMAT_VERSION, 0, layout.HEADER_SIZE, total, fb_offset, len(fb),
                          data_offset, data_length, bytes(layout.DIGEST_SIZE)).pack()
    h = hashlib.blake2b(digest_size=layout.DIGEST_SIZE)
    h.update(blank[:layout.DIGEST_OFFSET])
    h.update(blank[layout.DIGEST_OFFSET + layout.DIGEST_SIZE:])
    for p in pieces:
        h.update(p)
    header = (blank[:layout.DIGEST_OFFSET] + h.digest()
              + blank[layout.DIGEST_OFFSET + layout.DIGEST_SIZE:])
    log.debug("serialised module %r: %d bytes (FlatBuffer %d, data %d)",
              module.name, total, len(fb), data_length)
    return header, pieces


def serialized_size(module: Module) -> int:
    """The size in bytes of ``module``'s file, without copying its constants and payloads."""
    fb, _blobs, data_length = _plan(module)
    return layout.align(layout.HEADER_SIZE + len(fb)) + data_length


def _plan(module: Module) -> tuple[bytes, list[tuple[int, memoryview]], int]:
    """Validate, place constants and payloads in the data section, build the FlatBuffer."""
    if module.version != FORMAT_VERSION:
        raise ModuleFormatError(
            f"module {module.name!r}: this hal writes format version {FORMAT_VERSION}, but the "
            f"module asks for version {module.version}; build it with version={FORMAT_VERSION}")
    check_module(module, f"module {module.name!r}",
                 "this is a bug in whatever built the module (usually the compiler)")
    # The data section comes first: the FlatBuffer points into it relative to its start.
    blobs: list[tuple[int, memoryview]] = []
    cursor = 0

    def place(data: bytes | memoryview) -> tuple[int, int]:
        nonlocal cursor
        offset = layout.align(cursor)
        view = memoryview(data).cast("B")
        blobs.append((offset, view))
        cursor = offset + view.nbytes
        return offset, view.nbytes

    const_refs = [place(c.data) for c in module.constants]
    payload_refs = [[place(v.payload) for v in exe.variants] for exe in module.executables]
    try:
        fb = _build_flatbuffer(module, const_refs, payload_refs)
    except UnicodeEncodeError as e:
        raise ModuleFormatError(
            f"module {module.name!r}: every name must be encodable as UTF-8, found {e.object!r}; "
            "this is a bug in whatever built the module") from None
    return fb, blobs, cursor


def write_module(module: Module, path_or_file: str | os.PathLike[str] | BinaryIO) -> None:
    """Write ``module`` as a ``.halm`` file to a path or a binary file object.

    A path is written through a temporary file and renamed into place, so a process that has
    the old file memory-mapped keeps seeing the old bytes and no reader sees a half-written file.
    """
    header, pieces = _file_pieces(module)
    if hasattr(path_or_file, "write"):
        for p in (header, *pieces):
            path_or_file.write(p)  # type: ignore[union-attr]
        return
    path = os.fspath(path_or_file)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            for p in (header, *pieces):
                f.write(p)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    log.info("wrote module %r to %s (%d bytes)", module.name, path,
             len(header) + sum(memoryview(p).nbytes for p in pieces))


def _build_flatbuffer(module: Module, const_refs: list[tuple[int, int]],
                      payload_refs: list[list[tuple[int, int]]]) -> bytes:
    b = flatbuffers.Builder(1024)

    def strings(values) -> int:
        offsets = [b.CreateString(v) for v in values]
        b.StartVector(4, len(offsets), 4)
        for o in reversed(offsets):
            b.PrependUOffsetTRelative(o)
        return b.EndVector()

    def tables(offsets: list[int]) -> int:
        b.StartVector(4, len(offsets), 4)
        for o in reversed(offsets):
            b.PrependUOffsetTRelative(o)
        return b.EndVector()

    def tensor(t) -> int:
        dtype = b.CreateString(t.dtype)
        b.StartVector(8, len(t.shape), 8)
        for d in reversed(t.shape):
            b.PrependInt64(d)
        shape = b.EndVector()
        TensorType.Start(b)
        TensorType.AddShape(b, shape)
        TensorType.AddDtype(b, dtype)
        return TensorType.End(b)

    def buffer_ref(r: BufferRef) -> int:
        return CreateBufferRef(b, int(r.slot), r.index, r.offset, r.length)

    def host_op(op) -> int:
        if isinstance(op, Dispatch):
            b.StartVector(24, len(op.bindings), 8)
            for r in reversed(op.bindings):
                buffer_ref(r)
            bindings = b.EndVector()
            b.StartVector(8, len(op.constants), 8)
            for k in reversed(op.constants):
                b.PrependInt64(k)
            constants = b.EndVector()
            DispatchOp.Start(b)
            DispatchOp.AddExecutable(b, op.executable)
            DispatchOp.AddEntryPoint(b, op.entry_point)
            DispatchOp.AddBindings(b, bindings)
            DispatchOp.AddConstants(b, constants)
            kind, table = HostOp.HostOp.DispatchOp, DispatchOp.End(b)
        elif isinstance(op, Copy):
            CopyOp.Start(b)
            CopyOp.AddSource(b, buffer_ref(op.source))
            CopyOp.AddTarget(b, buffer_ref(op.target))
            kind, table = HostOp.HostOp.CopyOp, CopyOp.End(b)
        elif isinstance(op, Fill):
            pattern = b.CreateByteVector(op.pattern)
            FillOp.Start(b)
            FillOp.AddTarget(b, buffer_ref(op.target))
            FillOp.AddPattern(b, pattern)
            kind, table = HostOp.HostOp.FillOp, FillOp.End(b)
        else:
            assert isinstance(op, Barrier)
            BarrierOp.Start(b)
            kind, table = HostOp.HostOp.BarrierOp, BarrierOp.End(b)
        HostOpEntry.Start(b)
        HostOpEntry.AddOpType(b, kind)
        HostOpEntry.AddOp(b, table)
        return HostOpEntry.End(b)

    def function(f) -> int:
        name = b.CreateString(f.name)
        inputs = tables([tensor(t) for t in f.inputs])
        outputs = tables([tensor(t) for t in f.outputs])
        program = tables([host_op(op) for op in f.program])
        Function.Start(b)
        Function.AddName(b, name)
        Function.AddInputs(b, inputs)
        Function.AddOutputs(b, outputs)
        Function.AddProgram(b, program)
        Function.AddTransientSize(b, f.transient_size)
        return Function.End(b)

    def constant_pack(p) -> int:
        ConstantPack.Start(b)
        ConstantPack.AddBinding(b, p.binding)
        ConstantPack.AddEntryPoint(b, p.entry_point)
        ConstantPack.AddPackedSize(b, p.packed_size)
        return ConstantPack.End(b)

    def entry_point(ep) -> int:
        name = b.CreateString(ep.name)
        packs = tables([constant_pack(p) for p in ep.constant_packs]) \
            if ep.constant_packs else None
        EntryPoint.Start(b)
        EntryPoint.AddName(b, name)
        EntryPoint.AddWorkgroupCount(b, CreateDim3(b, *ep.workgroup_count))
        EntryPoint.AddWorkgroupSize(b, CreateDim3(b, *ep.workgroup_size))
        EntryPoint.AddBindingCount(b, ep.binding_count)
        EntryPoint.AddConstantCount(b, ep.constant_count)
        EntryPoint.AddScratchSize(b, ep.scratch_size)
        if packs is not None:
            EntryPoint.AddConstantPacks(b, packs)
        return EntryPoint.End(b)

    def variant(v, ref: tuple[int, int]) -> int:
        backend = b.CreateString(v.target_backend)
        fmt = b.CreateString(v.format)
        features = strings(v.features)
        eps = tables([entry_point(ep) for ep in v.entry_points])
        Variant.Start(b)
        Variant.AddTargetBackend(b, backend)
        Variant.AddFormat(b, fmt)
        Variant.AddFeatures(b, features)
        Variant.AddEntryPoints(b, eps)
        Variant.AddPayload(b, CreateDataRef(b, *ref))
        return Variant.End(b)

    def executable(exe, refs) -> int:
        name = b.CreateString(exe.name)
        variants = tables([variant(v, r) for v, r in zip(exe.variants, refs)])
        Executable.Start(b)
        Executable.AddName(b, name)
        Executable.AddVariants(b, variants)
        return Executable.End(b)

    def constant(c, ref: tuple[int, int]) -> int:
        name = b.CreateString(c.name)
        splat = b.CreateByteVector(bytes(c.splat)) if c.splat else None
        Constant.Start(b)
        Constant.AddName(b, name)
        Constant.AddData(b, CreateDataRef(b, *ref))
        if splat is not None:
            Constant.AddSplat(b, splat)
            Constant.AddSplatSize(b, c.splat_size)
        return Constant.End(b)

    def key_value(key: str, value: str) -> int:
        k, v = b.CreateString(key), b.CreateString(value)
        KeyValue.Start(b)
        KeyValue.AddKey(b, k)
        KeyValue.AddValue(b, v)
        return KeyValue.End(b)

    name = b.CreateString(module.name)
    functions = tables([function(f) for f in module.functions])
    executables = tables([executable(e, r) for e, r in zip(module.executables, payload_refs)])
    constants = tables([constant(c, r) for c, r in zip(module.constants, const_refs)])
    metadata = tables([key_value(k, v) for k, v in sorted(module.metadata.items())])
    FbModule.Start(b)
    FbModule.AddVersion(b, module.version)
    FbModule.AddName(b, name)
    # force_defaults is off, so ASYNC (0) is simply absent and reads back as the default.
    FbModule.AddExecutionModel(b, int(module.execution_model))
    FbModule.AddFunctions(b, functions)
    FbModule.AddExecutables(b, executables)
    FbModule.AddConstants(b, constants)
    FbModule.AddMetadata(b, metadata)
    b.Finish(FbModule.End(b), file_identifier=_FILE_IDENTIFIER)
    return bytes(b.Output())
