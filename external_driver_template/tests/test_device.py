"""The example device keeps its own memory: transfers are copies, mapping is refused."""

from __future__ import annotations

import numpy as np
import pytest

from hal_core.errors import HalRuntimeError, UsageError
from hal_core.hal import MemoryType


def test_memory_is_device_local_and_not_host_visible(device):
    buf = device.allocator.allocate_buffer(64)
    assert buf.memory_type & MemoryType.DEVICE_LOCAL
    assert not buf.memory_type & MemoryType.HOST_VISIBLE
    with pytest.raises(UsageError, match="not host visible"):
        buf.map()
    with pytest.raises(UsageError, match="cannot allocate memory type"):
        device.allocator.allocate_buffer(64, MemoryType.HOST_LOCAL)
    with pytest.raises(UsageError, match="cannot use host memory in place"):
        device.allocator.wrap_host(np.zeros(64, np.uint8))


def test_write_then_read_are_copies_ordered_by_semaphores(device):
    buf = device.allocator.allocate_buffer(64)
    data = np.arange(16, dtype=np.int32)
    sem = device.create_semaphore()
    device.queue_write([], [(sem, 1)], data, buf)
    data[:] = -1  # queue_write took the bytes when called
    out = np.zeros(8, np.int32)
    device.queue_read([(sem, 1)], [(sem, 2)], buf, 16, out)
    sem.wait(2, 10)
    assert out.tolist() == list(range(4, 12))
    out[:] = 0  # a host-side change never reaches device memory
    again = bytearray(8)
    device.queue_read([(sem, 2)], [(sem, 3)], buf, 16, again)
    sem.wait(3, 10)
    assert np.frombuffer(again, np.int32).tolist() == [4, 5]


def test_queue_waits_for_a_later_host_signal(device):
    buf = device.allocator.allocate_buffer(4)
    gate, done = device.create_semaphore(), device.create_semaphore()
    device.queue_write([(gate, 1)], [(done, 1)], b"\x01\x02\x03\x04", buf)
    out = bytearray(4)
    device.queue_read([(done, 1)], [(done, 2)], buf, 0, out)
    assert done.query() == 0
    gate.signal(1)
    done.wait(2, 10)
    assert bytes(out) == b"\x01\x02\x03\x04"


def test_bad_transfers_are_usage_errors(device):
    buf = device.allocator.allocate_buffer(8)
    sem = device.create_semaphore()
    with pytest.raises(UsageError, match="outside the buffer of 8 bytes"):
        device.queue_write([], [(sem, 1)], bytes(16), buf)
    with pytest.raises(UsageError, match="read-only"):
        device.queue_read([], [(sem, 1)], buf, 0, b"1234")
    other = np.zeros(8, np.uint8)
    with pytest.raises(UsageError, match="expected a buffer of device"):
        device.queue_read([], [(sem, 1)], other, 0, bytearray(8))


def test_out_of_device_memory_names_the_sizes():
    from hal_core.registry import get_registry

    with get_registry().create_device("example://?memory=1024") as small:
        small.allocator.allocate_buffer(1000)
        with pytest.raises(HalRuntimeError, match="out of memory: 100 bytes asked, 1000 of 1024"):
            small.allocator.allocate_buffer(100)


def test_device_uri_parameters_are_checked():
    from hal_core.registry import get_registry

    driver = get_registry().create_driver("example")
    with pytest.raises(UsageError, match="unknown parameter"):
        driver.create_device("example://?speed=9")
    with pytest.raises(UsageError, match="float64 0 or 1"):
        driver.create_device("example://?float64=yes")
    with driver.create_device("example://?float64=0") as dev:
        assert dev.properties()["float64"] is False


def test_closing_fails_work_that_never_started(device):
    buf = device.allocator.allocate_buffer(4)
    gate, done = device.create_semaphore(), device.create_semaphore()
    device.queue_write([(gate, 1)], [(done, 1)], bytes(4), buf)
    device.close()
    with pytest.raises(HalRuntimeError, match="never started"):
        done.wait(1, 10)


def test_check_variant_knows_only_its_own_namespace(device):
    from hal_core.module.model import Variant

    def variant(*features):
        return Variant("example", "example-program", features, (), b"")

    assert device.check_variant(variant()) is None
    assert device.check_variant(variant("example:float64")) is None
    assert "do not know" in device.check_variant(variant("cpu:avx2"))
    assert "do not know" in device.check_variant(variant("example:float128"))
    assert "malformed" in device.check_variant(variant("example:float64>="))
