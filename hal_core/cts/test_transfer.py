"""CTS: host data transfer (Device.queue_write / queue_read) and memory the host cannot map.

Every driver passes these, whether its memory is host memory (local drivers) or device memory
the host cannot map (a GPU, an accelerator, the devonly test driver).
"""

from __future__ import annotations

import numpy as np
import pytest

from hal_core.cts.executables import TIMEOUT, read_bytes, write_bytes
from hal_core.errors import UsageError
from hal_core.hal import BufferUsage, MemoryType


def test_write_and_read_round_trip_at_offsets(hal_device):
    buf = hal_device.allocator.allocate_buffer(256)
    data = np.arange(32, dtype=np.float32)
    write_bytes(hal_device, buf, data, 64)
    assert read_bytes(hal_device, buf, 64, 128) == data.tobytes()
    assert read_bytes(hal_device, buf, 0, 64) == bytes(64)
    out = np.zeros(8, np.float32)
    sem = hal_device.create_semaphore()
    hal_device.queue_read([], [(sem, 1)], buf, 64 + 16, out)  # into a numpy array
    sem.wait(1, TIMEOUT)
    np.testing.assert_array_equal(out, data[4:12])


def test_transfers_order_through_semaphores(hal_device):
    buf = hal_device.allocator.allocate_buffer(8)
    sem = hal_device.create_semaphore()
    data = bytearray(b"12345678")
    out = bytearray(8)
    hal_device.queue_read([(sem, 2)], [(sem, 3)], buf, 0, out)     # submitted first, runs last
    hal_device.queue_write([(sem, 1)], [(sem, 2)], data, buf)
    data[:] = b"xxxxxxxx"  # the write took the bytes when it was called
    sem.signal(1)
    sem.wait(3, TIMEOUT)
    assert out == b"12345678"


def test_transfer_mistakes_are_usage_errors(hal_device):
    buf = hal_device.allocator.allocate_buffer(16)
    with pytest.raises(UsageError):
        hal_device.queue_write([], [], bytes(32), buf)
    with pytest.raises(UsageError):
        hal_device.queue_read([], [], buf, 8, bytearray(16))
    with pytest.raises(UsageError):
        hal_device.queue_read([], [], buf, 0, b"read-only bytes!")


def test_memory_without_host_visible_cannot_be_mapped(hal_device):
    alloc = hal_device.allocator
    usage = BufferUsage.TRANSFER | BufferUsage.DISPATCH_STORAGE
    buf = alloc.allocate_buffer(64, MemoryType.DEVICE_LOCAL, usage)
    write_bytes(hal_device, buf, b"\x07" * 64)
    if buf.memory_type & MemoryType.HOST_VISIBLE:
        # Host memory (local drivers): still refused, since it was not allocated for MAPPING.
        with pytest.raises(UsageError, match="MAPPING"):
            buf.map()
    else:
        with pytest.raises(UsageError, match="not host visible"):
            buf.map()
        with pytest.raises(UsageError, match="not host visible"):
            buf.read()
    assert read_bytes(hal_device, buf) == b"\x07" * 64

