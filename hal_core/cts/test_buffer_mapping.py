"""CTS: buffer mapping: zero, fill, read, write, subspans, offsets, buffer views.

Only for drivers with host-visible memory: a driver whose memory the host cannot map lists
``"mapping"`` in ``cts_unsupported`` (test_transfer.py checks that mapping is refused there).
"""

from __future__ import annotations

import pytest

from hal_core.errors import UsageError
from hal_core.hal import BufferView, MemoryType

pytestmark = pytest.mark.hal_feature("mapping")


@pytest.fixture
def buf(hal_device):
    return hal_device.allocator.allocate_buffer(64, MemoryType.HOST_VISIBLE)


def test_write_then_read_at_offsets(buf):
    buf.write(b"\x01\x02\x03", offset=5)
    assert buf.read(4, 5) == b"\x00\x01\x02\x03\x00"
    assert buf.read(60) == bytes(4)


def test_map_is_a_zero_copy_view(buf):
    view = buf.map(8, 8)
    view[:] = 7
    assert buf.read(8, 8) == b"\x07" * 8
    buf.write(b"\x09", offset=8)
    assert view[0] == 9


@pytest.mark.parametrize("pattern, size", [(0xAB, 1), (0xBEEF, 2), (0xDEADBEEF, 4)])
def test_fill_patterns(buf, pattern, size):
    buf.fill(pattern, offset=8, length=16, pattern_length=size)
    expected = pattern.to_bytes(size, "little") * (16 // size)
    assert buf.read(8, 16) == expected
    assert buf.read(0, 8) == bytes(8) and buf.read(24) == bytes(40)


def test_fill_zero_clears(buf):
    buf.fill(0xFF)
    buf.fill(0, offset=4, length=4)
    assert buf.read(0, 12) == b"\xff" * 4 + bytes(4) + b"\xff" * 4


@pytest.mark.parametrize("offset, length", [(2, 8), (4, 6), (1, 4)])
def test_fill_misaligned_for_the_pattern_is_a_usage_error(buf, offset, length):
    with pytest.raises(UsageError, match="multiples of 4"):
        buf.fill(b"\x01\x02\x03\x04", offset=offset, length=length)


@pytest.mark.parametrize("pattern", [b"", b"\x01\x02\x03", b"12345678"])
def test_fill_pattern_sizes_other_than_1_2_4_are_usage_errors(buf, pattern):
    with pytest.raises(UsageError, match="1, 2 or 4"):
        buf.fill(pattern)


def test_subspans_alias_the_parent(buf):
    sub = buf.subspan(16, 16)
    assert sub.size == 16 and sub.byte_offset == 16 and sub.root is buf
    sub.write(b"\xaa" * 4, offset=4)
    assert buf.read(20, 4) == b"\xaa" * 4
    subsub = sub.subspan(4, 4)
    assert subsub.byte_offset == 20 and subsub.read() == b"\xaa" * 4


@pytest.mark.parametrize(
    "op",
    [
        lambda b: b.read(60, 8),
        lambda b: b.write(b"x" * 8, offset=60),
        lambda b: b.map(65),
        lambda b: b.subspan(32, 64),
        lambda b: b.fill(1, offset=-1, length=1),
    ],
)
def test_out_of_range_access_is_a_usage_error_naming_the_size(buf, op):
    with pytest.raises(UsageError, match="64 bytes"):
        op(buf)


def test_copy_between_buffers(hal_device, buf):
    # Both host visible: the default memory need not be (a discrete GPU's is not).
    src = hal_device.allocator.allocate_buffer(16, MemoryType.HOST_VISIBLE)
    src.write(bytes(range(16)))
    buf.copy_from(src, source_offset=4, offset=32, length=8)
    assert buf.read(32, 8) == bytes(range(4, 12))


def test_buffer_view_is_a_zero_copy_numpy_view(hal_device):
    import numpy as np

    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    buf = hal_device.allocator.allocate_buffer(48, MemoryType.HOST_VISIBLE)
    buf.write(a.tobytes())
    view = BufferView(buf, (3, 4), "float32")
    assert view.shape == (3, 4) and view.element_type == "float32" and view.byte_length == 48
    arr = view.to_numpy()
    np.testing.assert_array_equal(arr, a)
    arr[0, 0] = 42
    assert np.frombuffer(view.buffer.read(0, 4), np.float32)[0] == 42


def test_buffer_view_checks_size_and_type(buf):
    with pytest.raises(UsageError, match="64 bytes"):
        BufferView(buf, (4, 5), "float32")
    with pytest.raises(UsageError, match="element type"):
        BufferView(buf, (4,), "not-a-type")
