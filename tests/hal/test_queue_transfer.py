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


@pytest.fixture
def generic(registry):
    """local-sync with the base Device's queue_write / queue_read (command-buffer based)."""
    from hal_local.sync import SyncDevice, SyncDriver

    from hal_core.hal.device import Device

    class Generic(SyncDevice):
        queue_write = Device.queue_write
        queue_read = Device.queue_read

    dev = Generic(SyncDriver(registry), "local-sync://", 1)
    yield dev
    dev.close()


def test_base_device_transfers_work_through_command_buffers(generic):
    buf = generic.allocator.allocate_buffer(64)
    sem = generic.create_semaphore(0)
    data = bytearray(range(16))
    out = np.zeros(16, np.uint8)
    generic.queue_read([(sem, 2)], [(sem, 3)], buf, 8, out)
    generic.queue_write([(sem, 1)], [(sem, 2)], data, buf, 8)
    data[:] = bytes(16)  # captured when called
    assert sem.query() == 0
    sem.signal(1)
    sem.wait(3, timeout=10)
    assert bytes(out) == bytes(range(16))
    assert buf.read(0, 8) == bytes(8)


def test_base_device_read_failure_reaches_the_signal(generic):
    from hal_core.errors import HalRuntimeError

    buf = generic.allocator.allocate_buffer(8)
    gate, done = generic.create_semaphore(0), generic.create_semaphore(0)
    generic.queue_read([(gate, 1)], [(done, 1)], buf, 0, bytearray(8))
    gate.fail(HalRuntimeError("upstream work failed"))
    with pytest.raises(HalRuntimeError, match="upstream work failed"):
        done.wait(1, timeout=10)
