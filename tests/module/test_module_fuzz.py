"""Property-based fuzzing of the module reader: mutated, truncated and extended files, with the
content hash recomputed after the mutation so the FlatBuffer decoder itself is exercised."""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from module_samples import make_module

from hal_core.errors import IncompatibleModuleError, ModuleFormatError
from hal_core.module import layout
from hal_core.module.model import ExecutionModel, Module
from hal_core.module.reader import parse_module_bytes
from hal_core.module.writer import serialize_module

SAMPLES = [serialize_module(make_module()), serialize_module(make_module(ExecutionModel.INLINE))]
FB_START = layout.HEADER_SIZE
FB_END = [layout.Header.unpack(d).fb_offset + layout.Header.unpack(d).fb_length for d in SAMPLES]

FUZZ = settings(max_examples=1500, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])


def parse_or_project_error(data: bytes) -> Module | None:
    """Parse; anything but a module or the project's module errors fails the test."""
    try:
        module = parse_module_bytes(data, source="fuzz.halm")
    except (ModuleFormatError, IncompatibleModuleError) as error:
        assert "fuzz.halm" in str(error)
        return None
    assert isinstance(module, Module)
    return module


def fix_lengths(raw: bytearray) -> None:
    """Make the header's total and data lengths agree with the (mutated) file's size."""
    if len(raw) < layout.HEADER_SIZE:
        return
    header = layout.Header.unpack(raw)
    data_length = max(0, len(raw) - header.data_offset)
    fields = dict(header.__dict__, total_length=len(raw), data_length=data_length)
    raw[:layout.HEADER_SIZE] = layout.Header(**fields).pack()


mutation = st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=255))


@FUZZ
@given(sample=st.sampled_from([0, 1]), mutations=st.lists(mutation, min_size=1, max_size=8),
       in_flatbuffer=st.booleans(), reseal=st.booleans())
def test_mutated_modules(sample: int, mutations, in_flatbuffer: bool, reseal: bool) -> None:
    raw = bytearray(SAMPLES[sample])
    for position, value in mutations:
        if in_flatbuffer:  # aim at the FlatBuffer, where the hash alone would hide the decoder
            position = FB_START + position % (FB_END[sample] - FB_START)
        raw[position % len(raw)] = value
    if reseal:
        layout.seal(raw)
    parse_or_project_error(bytes(raw))


@FUZZ
@given(sample=st.sampled_from([0, 1]), cut=st.integers(min_value=0),
       tail=st.binary(max_size=300), fix=st.booleans())
def test_truncated_and_extended_modules(sample: int, cut: int, tail: bytes, fix: bool) -> None:
    data = SAMPLES[sample]
    raw = bytearray(data[:cut % (len(data) + 1)] + tail)
    if fix:
        fix_lengths(raw)
        if len(raw) >= layout.HEADER_SIZE:
            layout.seal(raw)
    parse_or_project_error(bytes(raw))


@FUZZ
@given(sample=st.sampled_from([0, 1]),
       words=st.lists(st.tuples(st.integers(min_value=0),
                                st.sampled_from([0, 1, 2, 3, 4, 8, 24, 64, 2**31 - 1, 2**31,
                                                 2**32 - 1, 2**32 - 4])),
                      min_size=1, max_size=4))
def test_crafted_offsets_in_the_flatbuffer(sample: int, words) -> None:
    """Overwrite aligned 32-bit words (offsets, lengths, vtable entries) with hostile values."""
    raw = bytearray(SAMPLES[sample])
    fb_words = (FB_END[sample] - FB_START) // 4
    for index, value in words:
        position = FB_START + 4 * (index % fb_words)
        raw[position:position + 4] = struct.pack("<I", value)
    layout.seal(raw)
    parse_or_project_error(bytes(raw))


@settings(max_examples=300, deadline=None, derandomize=True)
@given(data=st.binary(max_size=400))
def test_arbitrary_bytes_after_a_valid_header_prefix(data: bytes) -> None:
    parse_or_project_error(data)
    parse_or_project_error(b"HALM\x01\x00\x00\x00" + data)
