"""Recording-time validation of dispatches (the CTS covers fill/update/copy)."""

from __future__ import annotations

import pytest

from hal_core.errors import UsageError
from hal_core.hal import CommandBufferMode, EntryPoint


@pytest.fixture
def exe(device):
    eps = [EntryPoint("ids", binding_count=1, constant_count=1), EntryPoint("add", binding_count=3)]
    return device.executable_cache.prepare("test-python", b"ids,add", eps)


def test_dispatch_validation(device, exe):
    buf = device.allocator.allocate_buffer(16)
    cb = device.create_command_buffer(CommandBufferMode.REUSABLE, binding_capacity=1).begin()
    with pytest.raises(UsageError, match="no entry point 'mul'.*'ids', 'add'"):
        cb.dispatch(exe, "mul", (1, 1, 1), [buf], [0])
    with pytest.raises(UsageError, match="out of range"):
        cb.dispatch(exe, 2, (1, 1, 1), [buf], [0])
    with pytest.raises(UsageError, match="takes 1 bindings, got 2"):
        cb.dispatch(exe, "ids", (1, 1, 1), [buf, buf], [0])
    with pytest.raises(UsageError, match="takes 1 constants, got 0"):
        cb.dispatch(exe, "ids", (1, 1, 1), [buf])
    with pytest.raises(UsageError, match="32-bit"):
        cb.dispatch(exe, "ids", (1, 1, 1), [buf], [1 << 32])
    with pytest.raises(UsageError, match="three non-negative ints"):
        cb.dispatch(exe, "ids", (1, 1), [buf], [0])
    with pytest.raises(UsageError, match="binding 0: expected \\(buffer_or_slot"):
        cb.dispatch(exe, "ids", (1, 1, 1), [(buf, 0)], [0])
    with pytest.raises(UsageError, match="prepared executable"):
        cb.dispatch(object(), 0, (1, 1, 1))
    cb.dispatch(exe, "ids", (1, 1, 1), [(0, 0, 8)], [-1])
    assert cb.commands[-1].constants == (0xFFFFFFFF,)


def test_dispatch_needs_storage_usage(device, exe):
    from hal_core.hal import BufferUsage

    buf = device.allocator.allocate_buffer(16, usage=BufferUsage.TRANSFER)
    cb = device.create_command_buffer().begin()
    with pytest.raises(UsageError, match="DISPATCH_STORAGE"):
        cb.dispatch(exe, "ids", (1, 1, 1), [buf], [0])


def test_copy_from_a_slot_needs_a_length(device):
    cb = device.create_command_buffer(binding_capacity=2).begin()
    with pytest.raises(UsageError, match="length is required"):
        cb.copy(0, 1)
