"""Device.queue_write / queue_read of host data on the local devices."""

from __future__ import annotations

import numpy as np
import pytest

from hal_core.errors import UsageError


def test_write_then_read_round_trips(device):
    buf = device.allocator.allocate_buffer(64)
    sem = device.create_semaphore(0)
    data = np.arange(8, dtype=np.float32)
    device.queue_write((), [(sem, 1)], data, buf, 16)
    out = np.zeros(8, np.float32)
    device.queue_read([(sem, 1)], [(sem, 2)], buf, 16, out)
    sem.wait(2, timeout=10)
    np.testing.assert_array_equal(out, data)
    assert bytes(buf.read(0, 16)) == bytes(16)  # nothing before the offset was touched


def test_write_takes_the_bytes_when_called_even_if_it_waits(device):
    buf = device.allocator.allocate_buffer(4)
    gate, done = device.create_semaphore(0), device.create_semaphore(0)
    data = bytearray(b"\x01\x02\x03\x04")
    device.queue_write([(gate, 1)], [(done, 1)], data, buf)
    data[:] = b"\x09\x09\x09\x09"  # the caller reuses its buffer at once
    assert done.query() == 0
    gate.signal(1)
    done.wait(1, timeout=10)
    assert buf.read() == b"\x01\x02\x03\x04"


def test_read_waits_for_its_wait(device):
    buf = device.allocator.allocate_buffer(4)
    buf.write(b"abcd")
    gate, done = device.create_semaphore(0), device.create_semaphore(0)
    out = bytearray(4)
    device.queue_read([(gate, 1)], [(done, 1)], buf, 0, out)
    buf.write(b"wxyz")  # before the wait is reached: the read sees this
    gate.signal(1)
    done.wait(1, timeout=10)
    assert out == b"wxyz"


def test_transfer_errors_are_usage_errors(device):
    buf = device.allocator.allocate_buffer(8)
    with pytest.raises(UsageError, match="outside the buffer of 8 bytes"):
        device.queue_write((), (), bytes(16), buf)
    with pytest.raises(UsageError, match="outside the buffer of 8 bytes"):
        device.queue_read((), (), buf, 4, bytearray(8))
    with pytest.raises(UsageError, match="read-only"):
        device.queue_read((), (), buf, 0, b"12345678")
    with pytest.raises(UsageError, match="expects a target Buffer"):
        device.queue_write((), (), b"x", bytearray(1))
