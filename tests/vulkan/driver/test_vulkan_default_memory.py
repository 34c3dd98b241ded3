"""Which memory the vulkan driver gives kernels by default (what the runtime binds to)."""

from __future__ import annotations

import pytest

from hal_core.hal.allocator import MemoryType as M

pytest.importorskip("vulkan", exc_type=ImportError)
from hal_vulkan.driver.memory import default_memory_type  # noqa: E402

BAR = M.DEVICE_LOCAL | M.HOST_VISIBLE | M.HOST_COHERENT           # a discrete GPU's window
SYSTEM = M.HOST_VISIBLE | M.HOST_COHERENT | M.HOST_CACHED         # host memory over the bus
SHARED = M.DEVICE_LOCAL | M.HOST_VISIBLE | M.HOST_COHERENT | M.HOST_CACHED


def test_discrete_gpu_defaults_to_device_memory_and_staging():
    # As on the H200: an uncached BAR window the host reads at ~30 MB/s.
    assert default_memory_type([M.DEVICE_LOCAL, BAR, SYSTEM], cpu=False) == M.DEVICE_LOCAL


def test_cached_device_memory_and_cpu_devices_default_to_host_visible():
    assert default_memory_type([SHARED], cpu=False) == M.DEVICE_LOCAL | M.HOST_VISIBLE
    assert default_memory_type([SHARED], cpu=True) == M.DEVICE_LOCAL | M.HOST_VISIBLE
    assert default_memory_type([BAR], cpu=True) == M.DEVICE_LOCAL | M.HOST_VISIBLE


def test_the_window_a_request_would_get_decides_not_any_cached_type():
    # A cached device-local type beside the uncached BAR window: a default request still
    # gets the window (fewest extra flags), so the default must not be host visible.
    cached_bar = BAR | M.HOST_CACHED | M.HOST_LOCAL
    assert default_memory_type([M.DEVICE_LOCAL, BAR, cached_bar], cpu=False) == M.DEVICE_LOCAL


def test_host_memory_only_stays_host_visible():
    assert default_memory_type([SYSTEM], cpu=False) == M.DEVICE_LOCAL | M.HOST_VISIBLE


def test_no_host_visible_memory_defaults_to_device_memory():
    assert default_memory_type([M.DEVICE_LOCAL], cpu=False) == M.DEVICE_LOCAL


def test_host_visible_buffers_stay_mappable_where_the_default_memory_is_not(device):
    # As on an H200: the default is device memory (no MAPPING); asking for HOST_VISIBLE by
    # type must still give a mappable buffer (the CTS's mapping tests failed there).
    from hal_core.hal import BufferUsage, MemoryType

    alloc = device.allocator
    alloc.default_memory_type = MemoryType.DEVICE_LOCAL
    alloc.default_usage = BufferUsage.DEFAULT & ~BufferUsage.MAPPING
    buf = alloc.allocate_buffer(64, MemoryType.HOST_VISIBLE)
    assert buf.usage & BufferUsage.MAPPING
    view = buf.map()
    view[:] = 7
    assert bytes(buf.map()) == bytes([7]) * 64
