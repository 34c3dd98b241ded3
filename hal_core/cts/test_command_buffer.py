"""CTS: command buffer lifecycle, fill/update/copy, reusable buffers with binding tables."""

from __future__ import annotations

import pytest

from hal_core.cts.executables import read_bytes

from hal_core.errors import HalError, UsageError
from hal_core.hal import CommandBufferMode

TIMEOUT = 10.0


def run(device, cb, table=None):
    sem = device.create_semaphore()
    device.queue_execute([], [(sem, 1)], [cb], None if table is None else [table])
    sem.wait(1, TIMEOUT)


def test_lifecycle_errors(hal_device):
    buf = hal_device.allocator.allocate_buffer(16)
    cb = hal_device.create_command_buffer()
    with pytest.raises(UsageError, match="begin"):
        cb.fill(buf, 1)
    with pytest.raises(UsageError, match="end"):
        run(hal_device, cb)
    cb.begin()
    with pytest.raises(UsageError, match="begin"):
        cb.begin()
    cb.fill(buf, 1)
    cb.end()
    with pytest.raises(UsageError):
        cb.fill(buf, 2)
    with pytest.raises(UsageError):
        cb.end()
    run(hal_device, cb)
    assert read_bytes(hal_device, buf) == b"\x01" * 16
    with pytest.raises(UsageError, match="REUSABLE"):
        run(hal_device, cb)


def test_empty_command_buffer(hal_device):
    cb = hal_device.create_command_buffer().begin().end()
    run(hal_device, cb)


@pytest.mark.parametrize("size", [1, 2, 4])
@pytest.mark.parametrize("offset", [0, 4, 8])
def test_fill_patterns_and_offsets(hal_device, size, offset):
    buf = hal_device.allocator.allocate_buffer(32)
    pattern = bytes(range(1, size + 1))
    with hal_device.create_command_buffer() as cb:
        cb.fill(buf, pattern, offset=offset, length=16)
    run(hal_device, cb)
    assert read_bytes(hal_device, buf) == bytes(offset) + pattern * (16 // size) + bytes(16 - offset)


@pytest.mark.parametrize("size, offset, length", [(2, 1, 4), (4, 2, 8), (4, 0, 6)])
def test_misaligned_fill_is_rejected_at_record_time(hal_device, size, offset, length):
    buf = hal_device.allocator.allocate_buffer(32)
    cb = hal_device.create_command_buffer().begin()
    with pytest.raises(UsageError, match=f"multiples of {size}"):
        cb.fill(buf, bytes(size), offset=offset, length=length)


def test_update_and_copy_in_order(hal_device):
    a = hal_device.allocator.allocate_buffer(16)
    b = hal_device.allocator.allocate_buffer(16)
    with hal_device.create_command_buffer() as cb:
        cb.fill(a, 0x11)
        cb.update(a, b"\x01\x02\x03\x04", offset=4)
        cb.execution_barrier()
        cb.copy(a, b, source_offset=2, target_offset=8, length=8)
    run(hal_device, cb)
    assert read_bytes(hal_device, a) == b"\x11" * 4 + b"\x01\x02\x03\x04" + b"\x11" * 8
    assert read_bytes(hal_device, b) == bytes(8) + b"\x11\x11\x01\x02\x03\x04\x11\x11"


def test_update_captures_data_at_record_time(hal_device):
    a = hal_device.allocator.allocate_buffer(4)
    data = bytearray(b"abcd")
    with hal_device.create_command_buffer() as cb:
        cb.update(a, data)
    data[:] = b"zzzz"
    run(hal_device, cb)
    assert read_bytes(hal_device, a) == b"abcd"


def test_out_of_range_commands_are_rejected(hal_device):
    a = hal_device.allocator.allocate_buffer(16)
    cb = hal_device.create_command_buffer().begin()
    with pytest.raises(UsageError, match="16 bytes"):
        cb.update(a, b"x" * 4, offset=14)
    with pytest.raises(UsageError, match="16 bytes"):
        cb.copy(a, a, source_offset=0, target_offset=10, length=8)


@pytest.mark.hal_feature("reusable_command_buffers")
def test_reusable_command_buffer_with_different_bindings(hal_device):
    cb = hal_device.create_command_buffer(CommandBufferMode.REUSABLE, binding_capacity=2)
    with cb:
        cb.fill(1, 0x0, offset=0, length=8)
        cb.copy(0, 1, source_offset=0, target_offset=0, length=4)
        cb.update(1, b"\xee", offset=7)
    alloc = hal_device.allocator
    pairs = [
        (alloc.import_host(bytes([i] * 8)), alloc.import_host(b"\xff" * 8)) for i in range(1, 4)
    ]
    for _ in range(2):
        for src, dst in pairs:
            run(hal_device, cb, [src, dst])
    for i, (_, dst) in enumerate(pairs, start=1):
        assert read_bytes(hal_device, dst) == bytes([i] * 4) + bytes(3) + b"\xee"


@pytest.mark.hal_feature("reusable_command_buffers")
def test_binding_table_ranges(hal_device):
    cb = hal_device.create_command_buffer(CommandBufferMode.REUSABLE, binding_capacity=1)
    with cb:
        cb.fill(0, 0x7, offset=0, length=4)
    buf = hal_device.allocator.allocate_buffer(16)
    run(hal_device, cb, [(buf, 8, 8)])
    assert read_bytes(hal_device, buf) == bytes(8) + b"\x07" * 4 + bytes(4)


def test_binding_table_errors(hal_device):
    cb = hal_device.create_command_buffer(CommandBufferMode.REUSABLE, binding_capacity=2)
    with pytest.raises(UsageError, match="binding_capacity"):
        cb.begin().fill(2, 0)
    cb.copy(0, 1, length=16)
    cb.end()
    small = hal_device.allocator.allocate_buffer(8)
    big = hal_device.allocator.allocate_buffer(32)
    with pytest.raises(UsageError, match="binding table"):
        run(hal_device, cb)
    with pytest.raises(UsageError, match="binding table"):
        run(hal_device, cb, [big])
    with pytest.raises(UsageError, match="slot 1"):
        run(hal_device, cb, [big, small])
    with pytest.raises(UsageError, match="slot 0"):
        run(hal_device, cb, ["not a buffer", big])


def test_several_command_buffers_run_in_order(hal_device):
    buf = hal_device.allocator.allocate_buffer(4)
    cbs = []
    for value in (1, 2, 3):
        with hal_device.create_command_buffer() as cb:
            cb.fill(buf, value)
        cbs.append(cb)
    sem = hal_device.create_semaphore()
    hal_device.queue_execute([], [(sem, 1)], cbs)
    sem.wait(1, TIMEOUT)
    assert read_bytes(hal_device, buf) == b"\x03" * 4


def test_command_buffer_of_another_device_is_rejected(hal_driver, hal_device):
    other = hal_driver.create_default_device()
    try:
        cb = other.create_command_buffer().begin().end()
        with pytest.raises(HalError, match="not created by"):
            hal_device.queue_execute([], [], [cb])
    finally:
        other.close()


def test_rejected_submission_leaves_a_one_shot_buffer_submittable(hal_device):
    buf = hal_device.allocator.allocate_buffer(8)
    with hal_device.create_command_buffer(binding_capacity=1) as cb:
        cb.fill(0, 5)
    with pytest.raises(UsageError, match="slot 0"):
        run(hal_device, cb, ["not a buffer"])
    with pytest.raises(UsageError, match="one table"):
        hal_device.queue_execute([], [], [cb], [[buf], [buf]])
    run(hal_device, cb, [buf])
    assert read_bytes(hal_device, buf) == b"\x05" * 8


@pytest.mark.hal_feature("reusable_command_buffers")
def test_resubmitting_with_a_released_recorded_buffer_is_refused(hal_device):
    buf = hal_device.allocator.allocate_buffer(8)
    with hal_device.create_command_buffer(CommandBufferMode.REUSABLE) as cb:
        cb.fill(buf, 1)
    run(hal_device, cb)
    buf.release()
    with pytest.raises(UsageError, match="released"):
        run(hal_device, cb)
