"""Dispatch ABI, address mode: bindings as a ctypes array of base addresses (contract 5)."""

from __future__ import annotations

import ctypes
import threading

import numpy as np

from hal_core.hal import CommandBufferMode, EntryPoint, LocalExecutable


class AddressExecutable(LocalExecutable):
    """out[i] = a[i] + b[i] + constants[0] (float32), reading memory through raw addresses."""

    format = "test-address"
    binding_kind = "address"
    entry_points = (EntryPoint("add", binding_count=3, constant_count=1),)

    def __init__(self) -> None:
        self.seen: list[tuple[type, type, int]] = []
        self.lock = threading.Lock()

    def run(self, entry, workgroup_count, first, last, bindings, constants) -> None:
        with self.lock:
            self.seen.append((type(bindings), type(constants), len(bindings)))
        n = last - first
        f32 = ctypes.c_float * n
        a, b, out = (f32.from_address(bindings[i] + 4 * first) for i in range(3))
        add = float(constants[0])
        for i in range(n):
            out[i] = a[i] + b[i] + add


def test_address_mode_passes_ctypes_addresses_once_per_submission(device):
    n = 100
    exe = AddressExecutable()
    a = device.allocator.allocate_buffer(4 * n + 64)
    a.write(np.arange(n, dtype=np.float32), 64)  # bound at an offset of 64
    cb = device.create_command_buffer(CommandBufferMode.REUSABLE, binding_capacity=2)
    cb.begin()
    cb.dispatch(exe, 0, (n, 1, 1), [(a, 64, 4 * n), (0, 0, 4 * n), (1, 0, 4 * n)], [3])
    cb.end()
    sem = device.create_semaphore(0)
    for value, fill in ((1, 1.0), (2, 2.0)):  # rebinding the slots: new addresses
        b = device.allocator.allocate_buffer(4 * n)
        b.write(np.full(n, fill, np.float32))
        out = device.allocator.allocate_buffer(4 * n)
        device.queue_execute((), [(sem, value)], [cb], [[b, out]])
        sem.wait(value, timeout=10)
        got = np.frombuffer(out.read(), np.float32)
        np.testing.assert_array_equal(got, np.arange(n, dtype=np.float32) + fill + 3)
    kinds = set(exe.seen)
    assert kinds == {(ctypes.c_void_p * 3, ctypes.c_uint32 * 1, 3)}


def test_array_mode_is_still_the_default(device):
    from hal_testing import FakeRegistry

    loader = FakeRegistry().loader
    exe = loader.load(b"ids", [EntryPoint("ids", binding_count=1, constant_count=1)])
    assert exe.binding_kind == "array"
    buf = device.allocator.allocate_buffer(16)
    cb = device.create_command_buffer()
    cb.begin()
    cb.dispatch(exe, 0, (4, 1, 1), [buf], [10])
    cb.end()
    sem = device.create_semaphore(0)
    device.queue_execute((), [(sem, 1)], [cb])
    sem.wait(1, timeout=10)
    assert list(np.frombuffer(buf.read(), np.uint32)) == [10, 11, 12, 13]
