"""The vulkan driver on the machine's Vulkan device (lavapipe in CI): enumeration, URIs,
dispatch of SPIR-V, binding tables, fills/updates/copies, device-only memory, requirements."""

from __future__ import annotations

import os

import numpy as np
import pytest
from vk_kernels import ENTRY_POINTS

from hal_core.errors import HalError, HalRuntimeError, IncompatibleModuleError, UsageError
from hal_core.hal import CommandBufferMode, MemoryType, Semaphore
from hal_core.module.model import Variant, VariantEntryPoint

TIMEOUT = 30.0


def run(device, cbs, tables=None):
    sem = device.create_semaphore()
    device.queue_execute([], [(sem, 1)], list(cbs), tables)
    sem.wait(1, TIMEOUT)


def f32_bits(x: float) -> int:
    return int(np.array([x], np.float32).view(np.uint32)[0])


def prepare(device, payload):
    return device.executable_cache.prepare("spirv", payload, ENTRY_POINTS)


# -- enumeration and URIs -----------------------------------------------------------------------


def test_devices_have_uuid_uris_and_are_created_by_uuid_index_and_gpu_prefix(driver):
    infos = driver.query_available_devices()
    assert infos
    for i, info in enumerate(infos):
        uuid = info.uri.removeprefix("vulkan://")
        assert len(uuid) == 36 and uuid.count("-") == 4, info.uri
        assert info.properties["target_env"].startswith("#vk.target_env<v1.")
        for uri in (info.uri, f"vulkan://{i}", f"vulkan://GPU-{uuid}"):
            dev = driver.create_device(uri)
            try:
                assert dev.id == info.uri
            finally:
                dev.close()


def test_bad_device_uris_say_what_exists(driver):
    with pytest.raises(UsageError, match="no Vulkan device has UUID"):
        driver.create_device("vulkan://00000000-0000-0000-0000-000000000000")
    with pytest.raises(UsageError, match="out of range"):
        driver.create_device("vulkan://99")
    with pytest.raises(UsageError, match="sync must be"):
        driver.create_device("vulkan://?sync=never")
    with pytest.raises(UsageError, match="bogus"):
        driver.create_device("vulkan://?bogus=1")


# -- dispatch -----------------------------------------------------------------------------------


@pytest.mark.parametrize("uri", ["vulkan://", "vulkan://?sync=fence"])
def test_axpy_with_push_constants(driver, spirv_payload, uri):
    dev = driver.create_device(uri)
    try:
        exe = prepare(dev, spirv_payload)
        n = 1000  # not a multiple of the workgroup size: the kernel checks i < n
        rng = np.random.default_rng(0)
        x, y = rng.random(n, np.float32), rng.random(n, np.float32)
        a, b = dev.allocator.import_host(x), dev.allocator.import_host(y)
        out = dev.allocator.allocate_buffer(4 * n + 64)
        out.fill(0x7F, offset=4 * n)
        with dev.create_command_buffer() as cb:
            cb.dispatch(exe, "axpy", ((n + 63) // 64, 1, 1), [a, b, out],
                        [n, f32_bits(2.5)])
        run(dev, [cb])
        # GPUs may fuse the multiply-add (one rounding instead of two): within an ulp.
        np.testing.assert_allclose(np.frombuffer(out.read(0, 4 * n), np.float32),
                                   x * np.float32(2.5) + y, rtol=2.5e-7, atol=0)
        assert out.read(4 * n) == b"\x7f" * 64  # nothing written past n
    finally:
        dev.close()


def test_two_entry_points_and_a_2d_grid(device, spirv_payload):
    exe = prepare(device, spirv_payload)
    wx, wy = 5, 7
    ids = device.allocator.allocate_buffer(4 * 64 * wx * wy)
    with device.create_command_buffer() as cb:
        cb.fill(ids, b"\xff\xff\xff\xff")
        cb.execution_barrier()
        cb.dispatch(exe, 1, (wx, wy, 1), [ids])
    run(device, [cb])
    np.testing.assert_array_equal(np.frombuffer(ids.read(), np.uint32),
                                  np.arange(64 * wx * wy, dtype=np.uint32))


def test_reusable_command_buffer_in_flight_with_several_tables(device, spirv_payload):
    exe = prepare(device, spirv_payload)
    n = 4096
    cb = device.create_command_buffer(CommandBufferMode.REUSABLE, binding_capacity=3)
    with cb:
        cb.dispatch(exe, 0, (n // 64, 1, 1), [0, 1, (2, 64, 4 * n)], [n, f32_bits(-1.0)])
        cb.execution_barrier()
        cb.copy(2, 2, 64, 64 + 4 * n, 64)  # a transfer that reads a slot: re-recorded per table
    rng = np.random.default_rng(1)
    calls = []
    sem = device.create_semaphore()
    for i in range(6):  # all submitted before any wait: several instances in flight
        x, y = rng.random(n, np.float32), rng.random(n, np.float32)
        table = [device.allocator.import_host(x), device.allocator.import_host(y),
                 device.allocator.allocate_buffer(64 + 4 * n + 64)]
        device.queue_execute([], [(sem, i + 1)], [cb], [table])
        calls.append((x, y, table))
    sem.wait(6, TIMEOUT)
    for x, y, table in calls:
        got = np.frombuffer(table[2].read(64, 4 * n), np.float32)
        np.testing.assert_allclose(got, y - x, rtol=2.5e-7, atol=1e-7)
        assert table[2].read(64 + 4 * n) == got[:16].tobytes()


def test_misaligned_binding_offset_fails_the_submission(device, spirv_payload):
    exe = prepare(device, spirv_payload)
    align = device.physical.limits["minStorageBufferOffsetAlignment"]
    if align == 1:
        pytest.skip("this device binds storage buffers at any offset")
    buf = device.allocator.allocate_buffer(4096)
    with device.create_command_buffer() as cb:
        cb.dispatch(exe, 1, (1, 1, 1), [(buf, 4, 256)])
    sem = device.create_semaphore()
    device.queue_execute([], [(sem, 1)], [cb])
    with pytest.raises(HalRuntimeError, match="minStorageBufferOffsetAlignment"):
        sem.wait(1, TIMEOUT)


def test_bad_payloads_are_module_format_errors(device):
    with pytest.raises(HalError, match="magic"):
        device.executable_cache.prepare("spirv", b"\0" * 64, ENTRY_POINTS)
    with pytest.raises(HalError, match="whole number"):
        device.executable_cache.prepare("spirv", b"\0" * 7, ENTRY_POINTS)
    with pytest.raises(IncompatibleModuleError, match="vulkan-spirv"):
        device.executable_cache.prepare("vmvx-bytecode", b"\0", ())


def test_missing_entry_point_is_a_clear_error(device, spirv_payload):
    from hal_core.hal.executable import EntryPoint

    with pytest.raises(HalError, match="'nope'"):
        device.executable_cache.prepare("spirv", spirv_payload, [EntryPoint("nope", (64, 1, 1))])


# -- transfers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("pattern", [b"\x5a", b"\x01\x02", b"\x01\x02\x03\x04"])
@pytest.mark.parametrize("base", [0, 1, 2, 3, 4])
def test_fills_at_any_alignment(device, pattern, base):
    buf = device.allocator.allocate_buffer(64)
    sub = buf.subspan(base, 48)
    expected = bytearray(64)
    for offset, length in ((0, 4 * len(pattern)), (len(pattern) * 3, len(pattern) * 5)):
        with device.create_command_buffer() as cb:
            cb.fill(sub, pattern, offset=offset, length=length)
        run(device, [cb])
        expected[base + offset:base + offset + length] = pattern * (length // len(pattern))
        assert buf.read() == bytes(expected), (offset, length)


def test_updates_and_copies_at_odd_offsets(device):
    a = device.allocator.allocate_buffer(37)
    b = device.allocator.allocate_buffer(37)
    with device.create_command_buffer() as cb:
        cb.update(a, b"hello, vulkan", offset=3)
        cb.copy(a, b, source_offset=3, target_offset=11, length=13)
        cb.update(b, b"!", offset=36)
    run(device, [cb])
    assert a.read(3, 13) == b"hello, vulkan"
    assert b.read() == bytes(11) + b"hello, vulkan" + bytes(12) + b"!"


# -- device-only memory and host transfers -------------------------------------------------------


def test_device_only_memory_moves_through_queue_read_and_write(driver, spirv_payload):
    dev = driver.create_device("vulkan://?memory=device-only")
    try:
        assert not any(h.memory_type & MemoryType.HOST_VISIBLE
                       for h in dev.allocator.memory_heaps())
        with pytest.raises(UsageError, match="cannot allocate"):
            dev.allocator.allocate_buffer(16, MemoryType.HOST_VISIBLE)
        exe = prepare(dev, spirv_payload)
        n = 300
        x = np.arange(n, dtype=np.float32)
        bufs = [dev.allocator.allocate_buffer(4 * n, MemoryType.DEVICE_LOCAL) for _ in range(3)]
        with pytest.raises(UsageError, match="not host"):
            bufs[0].map()
        sem = dev.create_semaphore()
        dev.queue_write([], [(sem, 1)], x, bufs[0])
        dev.queue_write([(sem, 1)], [(sem, 2)], np.ones(n, np.float32).tobytes(), bufs[1])
        with dev.create_command_buffer() as cb:
            cb.dispatch(exe, 0, (5, 1, 1), [bufs[0], bufs[1], bufs[2]], [n, f32_bits(3.0)])
            cb.execution_barrier()
            cb.fill(bufs[2], b"\x00\x00", offset=4 * (n - 2), length=8)
        dev.queue_execute([(sem, 2)], [(sem, 3)], [cb])
        result = np.empty(n, np.float32)
        dev.queue_read([(sem, 3)], [(sem, 4)], bufs[2], 0, result)
        sem.wait(4, TIMEOUT)
        expected = x * 3 + 1
        expected[-2:] = 0
        np.testing.assert_array_equal(result, expected)
        # A fresh device-only buffer reads back as zeros; imports stage through the queue.
        imported = dev.allocator.import_host(b"\x01\x02\x03")
        back = bytearray(3)
        dev.queue_read([], [(sem, 5)], imported, 0, back)
        sem.wait(5, TIMEOUT)
        assert back == b"\x01\x02\x03"
    finally:
        dev.close()


def test_queue_read_write_on_host_visible_memory_order_after_waits(device):
    buf = device.allocator.allocate_buffer(8)
    gate, done = device.create_semaphore(), device.create_semaphore()
    device.queue_write([(gate, 1)], [(done, 1)], b"abcdefgh", buf)
    assert buf.read() == bytes(8)
    gate.signal(1)
    done.wait(1, TIMEOUT)
    out = bytearray(4)
    device.queue_read([], [(done, 2)], buf, 2, out)
    done.wait(2, TIMEOUT)
    assert out == b"cdef"
    with pytest.raises(UsageError, match="outside"):
        device.queue_read([], [], buf, 6, bytearray(4))
    with pytest.raises(UsageError, match="read-only"):
        device.queue_read([], [], buf, 0, b"1234")


def test_closed_device_fails_parked_work(driver):
    dev = driver.create_device()
    gate, done = Semaphore(), Semaphore()
    dev.queue_execute([(gate, 1)], [(done, 1)], [])
    dev.close()
    with pytest.raises(HalRuntimeError, match="closed"):
        done.wait(1, TIMEOUT)


# -- requirements -------------------------------------------------------------------------------


def variant(*features):
    return Variant("vulkan-spirv", "spirv", tuple(features),
                   (VariantEntryPoint("axpy", (1, 1, 1)),), b"")


def test_check_variant_accepts_what_the_device_has(device):
    p = device.physical
    size = p.limits["maxComputeWorkGroupSize"]
    assert device.check_variant(variant()) is None
    assert device.check_variant(variant(
        "vulkan:api>=1.1", f"vulkan:ext:{p.extensions[0]}", "vulkan:feature:shaderInt16"
        if p.features.get("shaderInt16") else "vulkan:api>=1.0",
        f"vulkan:limit:maxComputeSharedMemorySize>={p.limits['maxComputeSharedMemorySize']}",
        f"vulkan:limit:maxComputeWorkGroupSize>={size[0]}x{size[1]}x{size[2]}",
        f"vulkan:subgroup-size={p.subgroup_size}")) is None
    assert "vulkan:api>=1.1" in device.query_features()


@pytest.mark.parametrize("requirement, reason", [
    ("vulkan:api>=9.0", "needs Vulkan 9.0"),
    ("vulkan:ext:VK_NOPE_not_an_extension", "needs device extension VK_NOPE_not_an_extension"),
    ("vulkan:feature:noSuchFeature", "does not know"),
    ("vulkan:limit:maxComputeSharedMemorySize>=1000000000", "maxComputeSharedMemorySize >="),
    ("vulkan:limit:maxComputeWorkGroupSize>=1x1x99999", "maxComputeWorkGroupSize >= 1x1x99999"),
    ("vulkan:limit:maxComputeWorkGroupSize>=64", "component"),
    ("vulkan:subgroup-size=3", "needs subgroup size 3"),
    ("cpu:avx512f", "cpu:avx512f"),
    ("avx2", "avx2"),
    ("vulkan:whatever", "unknown Vulkan requirement"),
])
def test_check_variant_refuses_with_a_reason(device, requirement, reason):
    got = device.check_variant(variant(requirement))
    assert got is not None and reason in got, got
    assert device.id in got


def test_check_variant_refuses_other_formats(device):
    v = Variant("vmvx", "vmvx-bytecode", (), (), b"")
    assert "vmvx-bytecode" in device.check_variant(v)


def test_committed_spirv_matches_its_source():
    import shutil

    from vk_kernels import AXPY_IOTA, assemble, axpy_iota

    if shutil.which("spirv-as") is None:
        require_tools = os.environ.get("CI", "").lower() in ("1", "true", "yes")
        if require_tools:
            pytest.fail("spirv-as is required in CI (.ci/run installs spirv-tools)")
        pytest.skip("spirv-as not found; apt-get install spirv-tools")
    assert assemble(AXPY_IOTA) == axpy_iota()


def test_binding_tables_without_update_after_bind(driver, spirv_payload):
    # Devices without descriptorBindingStorageBufferUpdateAfterBind re-record a command buffer
    # for each new binding table (descriptors are written before recording).
    dev = driver.create_device()
    try:
        dev.context.update_after_bind = False
        exe = prepare(dev, spirv_payload)
        n = 256
        cb = dev.create_command_buffer(CommandBufferMode.REUSABLE, binding_capacity=3)
        with cb:
            cb.dispatch(exe, 0, (n // 64, 1, 1), [0, 1, 2], [n, f32_bits(2.0)])
        sem, value = dev.create_semaphore(), 0
        tables = []
        for i in range(3):
            x = np.full(n, i, np.float32)
            tables.append((i, [dev.allocator.import_host(x), dev.allocator.import_host(x),
                               dev.allocator.allocate_buffer(4 * n)]))
        for _ in range(2):
            for i, table in tables:
                value += 1
                dev.queue_execute([], [(sem, value)], [cb], [table])
                sem.wait(value, TIMEOUT)
                np.testing.assert_array_equal(np.frombuffer(table[2].read(), np.float32),
                                              np.full(n, 3 * i, np.float32))
    finally:
        dev.close()


@pytest.mark.parametrize("uri", ["vulkan://", "vulkan://?sync=fence"])
def test_back_to_back_submissions_signal_in_order(driver, spirv_payload, uri):
    # A host wait without a timeout completes the submission it waits for on its own thread;
    # earlier ones must be completed (and their values signalled) first, or a semaphore would
    # be asked to go backwards (seen on an H200: "current value 43, asked to signal 41").
    dev = driver.create_device(uri)
    try:
        exe = prepare(dev, spirv_payload)
        buf = dev.allocator.allocate_buffer(4 * 64 * 8)
        cb = dev.create_command_buffer(CommandBufferMode.REUSABLE)
        with cb:
            cb.dispatch(exe, 1, (8, 1, 1), [buf])
        sem, value = dev.create_semaphore(), 0
        for _ in range(20):
            for _ in range(10):
                value += 1
                dev.queue_execute([], [(sem, value)], [cb])
            sem.wait(value)
            assert sem.query() == value
    finally:
        dev.close()
