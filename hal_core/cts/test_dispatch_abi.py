"""CTS: push constants and workgroup ids through the local dispatch ABI.

Kernel IR cannot read push constants or workgroup ids, so these suites dispatch the CTS's own
Python executable format (:class:`hal_core.cts.executables.AbiLoader`) and check that the
driver passes each workgroup exactly once, with the recorded constants (as 32-bit words) and
its bindings, as :mod:`hal_core.hal.local.executable` specifies, in both binding kinds
(numpy arrays, and base addresses for ``binding_kind = "address"``). Drivers that do not dispatch
``LocalExecutable`` objects list ``local_dispatch_abi`` in ``cts_unsupported``.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hal_core.cts.executables import (
    abi_executable,
    download,
    read_bytes,
    submit,
    upload,
    write_bytes,
)
from hal_core.errors import UsageError
from hal_core.hal import CommandBufferMode

pytestmark = pytest.mark.hal_feature("local_dispatch_abi")


def test_push_constants_arrive_as_32_bit_words(hal_device):
    exe = abi_executable("echo4")
    out = hal_device.allocator.allocate_buffer(16)
    values = [0, -1, (1 << 31) - 1, -(1 << 31)]
    with hal_device.create_command_buffer() as cb:
        cb.dispatch(exe, 0, (1, 1, 1), [out], values)
    submit(hal_device, [cb])
    assert download(hal_device, out, np.uint32).tolist() == [v & 0xFFFFFFFF for v in values]
    assert {c[4] for c in exe.calls} == {tuple(v & 0xFFFFFFFF for v in values)}


def test_each_dispatch_gets_its_own_constants(hal_device):
    n = 1000
    exe = abi_executable("axpb")
    x = np.arange(n, dtype=np.int32) - 500
    bufs = [upload(hal_device, x), hal_device.allocator.allocate_buffer(4 * n)]
    steps = [(3, 1), (-2, 7), (1, -(1 << 31)), (0x10001, 5)]
    with hal_device.create_command_buffer() as cb:
        for i, (a, b) in enumerate(steps):
            cb.dispatch(exe, 0, (n, 1, 1), [bufs[i % 2], bufs[1 - i % 2]], [a, b])
            cb.execution_barrier()
    submit(hal_device, [cb])
    ref = x.copy()
    with np.errstate(over="ignore"):
        for a, b in steps:
            ref = np.int32(np.uint32(a & 0xFFFFFFFF).view(np.int32)) * ref + np.int32(b)
    np.testing.assert_array_equal(download(hal_device, bufs[len(steps) % 2], np.int32), ref)


@pytest.mark.parametrize("count", [(1, 1, 1), (1000, 1, 1), (5, 7, 3), (1, 1, 64), (2, 0, 9)])
def test_every_workgroup_runs_exactly_once(hal_device, count):
    total = count[0] * count[1] * count[2]
    exe = abi_executable("ids")
    ids = upload(hal_device, np.full(max(total, 1), 0xDEAD, np.uint32))
    hits = upload(hal_device, np.zeros(max(total, 1), np.uint32))
    with hal_device.create_command_buffer() as cb:
        cb.dispatch(exe, 0, count, [ids, hits], [100])
    submit(hal_device, [cb])
    if total == 0:
        assert exe.calls == [] or all(c[2] == c[3] for c in exe.calls)
        assert download(hal_device, hits, np.uint32).tolist() == [0]
        return
    np.testing.assert_array_equal(download(hal_device, hits, np.uint32), np.ones(total, np.uint32))
    np.testing.assert_array_equal(download(hal_device, ids, np.uint32), np.arange(total) + 100)
    # Tiles are ranges of flat ids that partition [0, total); each call sees the whole count.
    tiles = sorted((first, last) for _, _, first, last, _ in exe.calls if first < last)
    assert tiles[0][0] == 0 and tiles[-1][1] == total
    assert all(a[1] == b[0] for a, b in itertools.pairwise(tiles))
    assert {c[1] for c in exe.calls} == {tuple(count)}


def test_several_entry_points_with_different_signatures(hal_device):
    exe = abi_executable("echo4", "ids", "axpb")
    alloc = hal_device.allocator
    echo, ids, hits = (
        alloc.allocate_buffer(16),
        alloc.allocate_buffer(32),
        alloc.allocate_buffer(32),
    )
    write_bytes(hal_device, hits, bytes(32))
    x = upload(hal_device, np.arange(8, dtype=np.int32))
    y = alloc.allocate_buffer(32)
    with hal_device.create_command_buffer() as cb:
        cb.dispatch(exe, "echo4", (1, 1, 1), [echo], [1, 2, 3, 4])
        cb.dispatch(exe, 1, (8, 1, 1), [ids, hits], [7])
        cb.dispatch(exe, "axpb", (8, 1, 1), [x, y], [2, 1])
    submit(hal_device, [cb])
    assert download(hal_device, echo, np.uint32).tolist() == [1, 2, 3, 4]
    assert download(hal_device, ids, np.uint32).tolist() == list(range(7, 15))
    assert download(hal_device, y, np.int32).tolist() == [2 * i + 1 for i in range(8)]


@pytest.mark.hal_feature("reusable_command_buffers")
def test_reusable_buffer_keeps_its_constants_across_binding_tables(hal_device):
    n = 64
    exe = abi_executable("axpb")
    cb = hal_device.create_command_buffer(CommandBufferMode.REUSABLE, binding_capacity=2)
    consts = [5, -3]
    with cb:
        cb.dispatch(exe, 0, (n, 1, 1), [0, (1, 32, 4 * n)], consts)
    consts[0] = 99  # recorded values are copies
    for seed in range(3):
        x = np.random.default_rng(seed).integers(-1000, 1000, n, dtype=np.int32)
        out = hal_device.allocator.allocate_buffer(32 + 4 * n)
        submit(hal_device, [cb], [[upload(hal_device, x), out]])
        np.testing.assert_array_equal(np.frombuffer(read_bytes(hal_device, out)[32:], np.int32), 5 * x - 3)
        assert read_bytes(hal_device, out)[:32] == bytes(32)


def test_constant_count_and_range_are_checked_at_record_time(hal_device):
    exe = abi_executable("axpb")
    a = hal_device.allocator.allocate_buffer(16)
    cb = hal_device.create_command_buffer().begin()
    with pytest.raises(UsageError, match="2 constants, got 1"):
        cb.dispatch(exe, 0, (4, 1, 1), [a, a], [1])
    with pytest.raises(UsageError, match="2 constants, got 3"):
        cb.dispatch(exe, 0, (4, 1, 1), [a, a], [1, 2, 3])
    for bad in (1 << 32, -(1 << 31) - 1, 1.5, "7"):
        with pytest.raises(UsageError, match="32-bit"):
            cb.dispatch(exe, 0, (4, 1, 1), [a, a], [0, bad])
    cb.dispatch(exe, 0, (4, 1, 1), [a, a], [(1 << 32) - 1, -(1 << 31)])
    cb.end()


def test_address_mode_gets_base_addresses_and_uint32_constants(hal_device):
    import ctypes

    from hal_core.cts.executables import AddressAxpb

    n = 777
    exe = AddressAxpb()
    x = np.arange(n, dtype=np.int32) - 100
    src = hal_device.allocator.allocate_buffer(64 + 4 * n)
    write_bytes(hal_device, src, x, 64)
    cb = hal_device.create_command_buffer(CommandBufferMode.REUSABLE, binding_capacity=1)
    cb.begin()
    cb.dispatch(exe, 0, (n, 1, 1), [(src, 64, 4 * n), (0, 64, 4 * n)], [3, -5])
    cb.end()
    for _ in range(2):  # a reusable buffer: addresses resolved per submission
        out = hal_device.allocator.allocate_buffer(128 + 4 * n)
        submit(hal_device, [cb], [[out]])
        got = np.frombuffer(read_bytes(hal_device, out, 64, 4 * n), np.int32)
        np.testing.assert_array_equal(got, 3 * x - 5)
        assert read_bytes(hal_device, out, 0, 64) == bytes(64)
    assert exe.kinds == {(ctypes.c_void_p * 2, 2, ctypes.c_uint32 * 2)}
