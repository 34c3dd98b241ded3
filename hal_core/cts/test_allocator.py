"""CTS: allocator memory types, usage bits, alignment, statistics."""

from __future__ import annotations

import pytest

from hal_core.errors import UsageError
from hal_core.hal import BUFFER_ALIGNMENT, Buffer, BufferUsage, MemoryType


@pytest.mark.parametrize("size", [0, 1, 3, 64, 1000, 1 << 16])
def test_allocates_zeroed_aligned_buffers(hal_device, size):
    buf = hal_device.allocator.allocate_buffer(size)
    assert isinstance(buf, Buffer) and buf.size == size
    view = buf.map()
    if size:  # an empty array's data pointer is not meaningful
        assert view.ctypes.data % BUFFER_ALIGNMENT == 0
    assert buf.read() == bytes(size)


def test_default_buffers_are_host_visible_with_default_usage(hal_device):
    buf = hal_device.allocator.allocate_buffer(8)
    assert buf.memory_type & MemoryType.HOST_VISIBLE
    assert (buf.usage & BufferUsage.DEFAULT) == BufferUsage.DEFAULT


def test_compatibility_query(hal_device):
    alloc = hal_device.allocator
    assert alloc.query_compatibility(MemoryType.HOST_VISIBLE, BufferUsage.MAPPING)
    assert alloc.memory_heaps()


@pytest.mark.parametrize("size", [-1, 1.5, "8"])
def test_bad_sizes_are_usage_errors(hal_device, size):
    with pytest.raises(UsageError, match="size"):
        hal_device.allocator.allocate_buffer(size)


def test_usage_bits_are_enforced(hal_device):
    buf = hal_device.allocator.allocate_buffer(8, usage=BufferUsage.TRANSFER)
    with pytest.raises(UsageError, match="MAPPING"):
        buf.map()


def test_statistics_track_allocation_and_release(hal_device):
    alloc = hal_device.allocator
    before = alloc.statistics()
    buf = alloc.allocate_buffer(128)
    assert alloc.statistics()["bytes_allocated"] == before["bytes_allocated"] + 128
    buf.release()
    assert alloc.statistics()["bytes_live"] == before["bytes_live"]
    with pytest.raises(UsageError, match="released"):
        buf.read()


def test_import_host_copies_data(hal_device):
    data = bytes(range(10))
    buf = hal_device.allocator.import_host(data)
    assert buf.read() == data
