"""Truncated, corrupted and crafted module files: each fails with the project's own errors."""

from __future__ import annotations

import struct

import flatbuffers
import pytest
from module_samples import make_module

from hal_core.errors import IncompatibleModuleError, ModuleFormatError
from hal_core.module import layout
from hal_core.module.model import FORMAT_VERSION, Module
from hal_core.module.reader import load_module_file, parse_module_bytes
from hal_core.module.schema.generated import BarrierOp, Function, HostOp, HostOpEntry
from hal_core.module.schema.generated import Module as FbModule
from hal_core.module.writer import serialize_module

VERSION_FIELD = range(4, 8)


@pytest.fixture(scope="module")
def data() -> bytes:
    return serialize_module(make_module())


def reseal(raw: bytearray) -> bytes:
    layout.seal(raw)
    return bytes(raw)


def test_every_truncation_is_a_format_error(data: bytes) -> None:
    for n in range(len(data)):
        with pytest.raises(ModuleFormatError) as info:
            parse_module_bytes(data[:n], source="cut.halm")
        assert "cut.halm" in str(info.value)
    assert "truncated" in str(info.value)


def test_every_single_byte_corruption_is_caught(data: bytes) -> None:
    for position in range(len(data)):
        raw = bytearray(data)
        raw[position] ^= 0x5A
        expected = IncompatibleModuleError if position in VERSION_FIELD else ModuleFormatError
        with pytest.raises(expected):
            parse_module_bytes(bytes(raw))


def test_corruption_of_the_body_reports_the_hash(data: bytes) -> None:
    raw = bytearray(data)
    raw[-1] ^= 1
    with pytest.raises(ModuleFormatError, match="content hash mismatch.*recompile"):
        parse_module_bytes(bytes(raw), source="x.halm")


def test_newer_version_is_incompatible_and_says_both_versions(data: bytes) -> None:
    raw = bytearray(data)
    raw[4:8] = struct.pack("<I", FORMAT_VERSION + 1)
    with pytest.raises(IncompatibleModuleError) as info:
        parse_module_bytes(reseal(raw), source="new.halm")
    message = str(info.value)
    assert f"format version {FORMAT_VERSION + 1}" in message
    assert f"reads version {FORMAT_VERSION}" in message
    assert "upgrade hal" in message and "recompile" in message


@pytest.mark.parametrize("prefix", [b"", b"H", b"HAL", b"PK\x03\x04", b"\x7fELF" + bytes(200)])
def test_wrong_magic(prefix: bytes) -> None:
    with pytest.raises(ModuleFormatError):
        parse_module_bytes(prefix)


def test_wrong_magic_message(data: bytes) -> None:
    with pytest.raises(ModuleFormatError, match=r"not a hal module file.*b'HALM'.*b'MLAH'"):
        parse_module_bytes(b"MLAH" + data[4:])


def test_trailing_bytes_are_rejected(data: bytes) -> None:
    with pytest.raises(ModuleFormatError, match="trailing bytes"):
        parse_module_bytes(data + b"\0")


def test_version_zero_is_a_format_error(data: bytes) -> None:
    raw = bytearray(data)
    raw[4:8] = bytes(4)
    with pytest.raises(ModuleFormatError, match="format version must be"):
        parse_module_bytes(reseal(raw))


def test_header_fields_are_checked_even_with_a_valid_hash(data: bytes) -> None:
    header = layout.Header.unpack(data)
    for field, value in [("flags", 1), ("header_size", 64), ("fb_length", 10**9),
                         ("data_offset", header.data_offset + 1), ("fb_offset", 0),
                         ("data_length", 3)]:
        raw = bytearray(data)
        fields = dict(header.__dict__, **{field: value})
        raw[:layout.HEADER_SIZE] = layout.Header(**fields).pack()
        with pytest.raises(ModuleFormatError, match="bad module header"):
            parse_module_bytes(reseal(raw))


def test_load_module_file_errors(tmp_path, data: bytes) -> None:
    with pytest.raises(ModuleFormatError, match="cannot read the module file"):
        load_module_file(tmp_path / "missing.halm")
    (tmp_path / "empty.halm").write_bytes(b"")
    with pytest.raises(ModuleFormatError, match="empty.halm: not a hal module"):
        load_module_file(tmp_path / "empty.halm")
    (tmp_path / "cut.halm").write_bytes(data[:-10])
    with pytest.raises(ModuleFormatError, match="cut.halm: file is truncated"):
        load_module_file(tmp_path / "cut.halm")


def test_resealed_byte_changes_in_the_flatbuffer_only_raise_project_errors(data: bytes) -> None:
    """With the hash recomputed, every byte of the FlatBuffer is changed to two values; the
    decoder must either reject the file cleanly or return a module that passes validation."""
    header = layout.Header.unpack(data)
    outcomes = {"rejected": 0, "accepted": 0}
    for position in range(header.fb_offset, header.fb_offset + header.fb_length):
        for value in (0xFF, data[position] ^ 0x01):
            raw = bytearray(data)
            raw[position] = value
            try:
                parse_module_bytes(reseal(raw))
                outcomes["accepted"] += 1
            except ModuleFormatError:
                outcomes["rejected"] += 1
    # Both outcomes occur: padding/unused bytes change nothing, offsets break the buffer.
    assert outcomes["rejected"] > 100 and outcomes["accepted"] > 100


def wrap_flatbuffer(fb: bytes, data: bytes = b"") -> bytes:
    """A sealed module file around a hand-built FlatBuffer."""
    fb_offset = layout.HEADER_SIZE
    data_offset = layout.align(fb_offset + len(fb))
    raw = bytearray(data_offset + len(data))
    raw[fb_offset:fb_offset + len(fb)] = fb
    raw[data_offset:] = data
    raw[:fb_offset] = layout.Header(FORMAT_VERSION, 0, layout.HEADER_SIZE, len(raw), fb_offset,
                                    len(fb), data_offset, len(data), bytes(32)).pack()
    return reseal(raw)


def test_shared_subobjects_cannot_multiply_the_work() -> None:
    """A FlatBuffer may point many tables at one vector; a crafted module that reuses one long
    program in thousands of functions would decode to millions of ops from a few kilobytes."""
    b = flatbuffers.Builder(0)
    BarrierOp.Start(b)
    barrier = BarrierOp.End(b)
    HostOpEntry.Start(b)
    HostOpEntry.AddOpType(b, HostOp.HostOp.BarrierOp)
    HostOpEntry.AddOp(b, barrier)
    entry = HostOpEntry.End(b)
    b.StartVector(4, 2000, 4)
    for _ in range(2000):
        b.PrependUOffsetTRelative(entry)
    program = b.EndVector()
    name = b.CreateString("f")
    Function.Start(b)
    Function.AddName(b, name)
    Function.AddProgram(b, program)
    function = Function.End(b)
    b.StartVector(4, 2000, 4)
    for _ in range(2000):
        b.PrependUOffsetTRelative(function)
    functions = b.EndVector()
    module_name = b.CreateString("bomb")
    FbModule.Start(b)
    FbModule.AddVersion(b, FORMAT_VERSION)
    FbModule.AddName(b, module_name)
    FbModule.AddFunctions(b, functions)
    b.Finish(FbModule.End(b), file_identifier=b"HALF")
    with pytest.raises(ModuleFormatError, match="refers to more data than its"):
        parse_module_bytes(wrap_flatbuffer(bytes(b.Output())))


def test_hand_built_flatbuffer_without_identifier_is_rejected() -> None:
    b = flatbuffers.Builder(0)
    FbModule.Start(b)
    b.Finish(FbModule.End(b))
    with pytest.raises(ModuleFormatError, match="FlatBuffer identifier"):
        parse_module_bytes(wrap_flatbuffer(bytes(b.Output())))


def test_a_resealed_module_that_decodes_is_still_validated() -> None:
    """Point a data reference outside the data section: the hash is fine, the bounds are not."""
    module = make_module()
    data = bytearray(serialize_module(module))
    header = layout.Header.unpack(data)
    fb = bytes(data[header.fb_offset:header.fb_offset + header.fb_length])
    # The 'bias' constant (1000 zero bytes) is the last constant; find its DataRef (offset,
    # length) pair by value and push its offset past the end.
    parsed = parse_module_bytes(bytes(data))
    bias = parsed.constants[3].data
    needle = struct.pack("<Q", 1000)
    at = fb.index(needle)
    start = header.fb_offset + at - 8
    offset = struct.unpack_from("<Q", data, start)[0]
    assert offset % 64 == 0 and bias.nbytes == 1000
    data[start:start + 8] = struct.pack("<Q", header.data_length + 64)
    expected = (rf"its data \[{header.data_length + 64}, \+1000\) must start.*within the "
                rf"{header.data_length}-byte data section.*constant 3")
    with pytest.raises(ModuleFormatError, match=expected):
        parse_module_bytes(reseal(data))


def test_module_is_unchanged_by_a_round_trip_through_a_corrupt_neighbour(data: bytes) -> None:
    assert parse_module_bytes(data) == make_module()
    assert isinstance(parse_module_bytes(data), Module)
