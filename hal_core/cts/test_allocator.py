"""CTS: allocator memory types, usage bits, alignment, statistics."""

from __future__ import annotations

import pytest

from hal_core.cts.executables import read_bytes
from hal_core.errors import UsageError
from hal_core.hal import BUFFER_ALIGNMENT, Buffer, BufferUsage, MemoryType


@pytest.mark.parametrize("size", [0, 1, 3, 64, 1000, 1 << 16])
def test_allocates_zeroed_aligned_buffers(hal_device, size):
    buf = hal_device.allocator.allocate_buffer(size)
    assert isinstance(buf, Buffer) and buf.size == size
    assert read_bytes(hal_device, buf) == bytes(size)


@pytest.mark.hal_feature("mapping")
@pytest.mark.parametrize("size", [1, 3, 64, 1000])
def test_mapped_buffers_are_aligned(hal_device, size):
    buf = hal_device.allocator.allocate_buffer(size, MemoryType.HOST_VISIBLE)
    assert buf.map().ctypes.data % BUFFER_ALIGNMENT == 0


def test_default_buffers_have_the_allocators_default_type_and_usage(hal_device):
    alloc = hal_device.allocator
    buf = alloc.allocate_buffer(8)
    assert (buf.memory_type & alloc.default_memory_type) == alloc.default_memory_type
    assert (buf.usage & alloc.default_usage) == alloc.default_usage


def test_compatibility_query(hal_device):
    alloc = hal_device.allocator
    assert alloc.memory_heaps()
    assert alloc.query_compatibility(MemoryType.DEVICE_VISIBLE,
                                     BufferUsage.DISPATCH_STORAGE | BufferUsage.TRANSFER)
    mappable = alloc.query_compatibility(MemoryType.HOST_VISIBLE, BufferUsage.MAPPING)
    assert mappable == any(h.memory_type & MemoryType.HOST_VISIBLE
                           and h.allowed_usage & BufferUsage.MAPPING
                           for h in alloc.memory_heaps())


@pytest.mark.parametrize("size", [-1, 1.5, "8"])
def test_bad_sizes_are_usage_errors(hal_device, size):
    with pytest.raises(UsageError, match="size"):
        hal_device.allocator.allocate_buffer(size)


@pytest.mark.hal_feature("mapping")
def test_usage_bits_are_enforced(hal_device):
    buf = hal_device.allocator.allocate_buffer(8, MemoryType.HOST_VISIBLE,
                                               usage=BufferUsage.TRANSFER)
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
        read_bytes(hal_device, buf)


def test_import_host_copies_data(hal_device):
    data = bytes(range(10))
    buf = hal_device.allocator.import_host(data)
    assert read_bytes(hal_device, buf) == data
