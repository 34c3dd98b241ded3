"""CTS: queue alloca / execute / dealloca cycles and barriers."""

from __future__ import annotations

import pytest

from hal_core.cts.executables import read_bytes

from hal_core.errors import UsageError

TIMEOUT = 10.0


def test_alloca_execute_dealloca_cycles(hal_device):
    sem = hal_device.create_semaphore()
    value = 0
    for i in range(20):
        buf = hal_device.queue_alloca([(sem, value)], [(sem, value + 1)], 64)
        with hal_device.create_command_buffer() as cb:
            cb.fill(buf, i)
        hal_device.queue_execute([(sem, value + 1)], [(sem, value + 2)], [cb])
        sem.wait(value + 2, TIMEOUT)
        assert read_bytes(hal_device, buf) == bytes([i]) * 64
        hal_device.queue_dealloca([(sem, value + 2)], [(sem, value + 3)], buf)
        sem.wait(value + 3, TIMEOUT)
        assert buf.released
        value += 3
    stats = hal_device.allocator.statistics()
    assert stats["bytes_live"] == 0


def test_dealloca_waits_for_its_wait(hal_device):
    gate, done = hal_device.create_semaphore(), hal_device.create_semaphore()
    buf = hal_device.allocator.allocate_buffer(8)
    hal_device.queue_dealloca([(gate, 1)], [(done, 1)], buf)
    assert not buf.released
    gate.signal(1)
    done.wait(1, TIMEOUT)
    assert buf.released


def test_barrier_orders_signals(hal_device):
    a, b = hal_device.create_semaphore(), hal_device.create_semaphore()
    hal_device.queue_barrier([(a, 1)], [(b, 1)])
    a.signal(1)
    b.wait(1, TIMEOUT)


def test_malformed_fences_are_usage_errors(hal_device):
    sem = hal_device.create_semaphore()
    with pytest.raises(UsageError, match="list"):
        hal_device.queue_execute((sem, 1), [], [])
    with pytest.raises(UsageError):
        hal_device.queue_execute([], [(sem, "one")], [])
    with pytest.raises(UsageError):
        hal_device.queue_alloca([], [], -5)
