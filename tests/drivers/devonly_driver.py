"""A test driver whose memory the host cannot map: ``devonly``.

It executes like local-sync (loaders, inline on the submitting thread), but its allocator hands
out only ``DEVICE_LOCAL`` memory without ``HOST_VISIBLE`` or ``MAPPING``: ``Buffer.map`` is
refused, the allocator cannot wrap host memory, and data reaches the device only through
``Device.queue_write`` / ``queue_read`` (and ``Allocator.import_host``, an upload at allocation).
It is what the runtime and the CTS must handle for a GPU or accelerator driver.

``nowrap`` is its sibling with host-visible memory that cannot alias the caller's arrays (the
runtime's mapped staging path). Registered through ``HAL_EXTERNAL_DRIVERS=<this file>`` (see
tests/drivers/test_devonly.py).
"""

from __future__ import annotations

from typing import Any, ClassVar

from hal_core.descriptors import DriverInfo
from hal_core.hal.allocator import Allocator, BufferUsage, MemoryHeap, MemoryType
from hal_core.hal.local.device import InlineLocalDevice, LocalDriver
from hal_core.hookspecs import hookimpl

HAL_PLUGIN_API_VERSION = "1.0"

DEVICE_USAGE = BufferUsage.TRANSFER | BufferUsage.DISPATCH_STORAGE


class DeviceOnlyAllocator(Allocator):
    default_memory_type = MemoryType.DEVICE_LOCAL
    default_usage = DEVICE_USAGE
    can_wrap_host = False

    def __init__(self, device_id: str = "", max_allocation_size: int = 1 << 40) -> None:
        super().__init__(device_id, max_allocation_size)
        self._heaps = (MemoryHeap(MemoryType.DEVICE_LOCAL, DEVICE_USAGE, max_allocation_size),)

    def wrap_host(self, array: Any, usage: BufferUsage = DEVICE_USAGE) -> Any:
        from hal_core.errors import UsageError

        raise UsageError(f"device {self.device_id}: device-only memory cannot alias host "
                         f"memory; allocate a buffer and queue_write into it")


class DeviceOnlyDevice(InlineLocalDevice):
    allocator_class = DeviceOnlyAllocator


class DeviceOnlyDriver(LocalDriver):
    name = "devonly"
    device_class = DeviceOnlyDevice
    params: ClassVar[dict[str, str]] = {}
    cts_unsupported: ClassVar[dict[str, str]] = {
        "mapping": "device-only memory: the host cannot map it (queue_read/queue_write only)",
    }

    def default_workers(self) -> int:
        return 1

    def create_device(self, uri: str | None = None) -> DeviceOnlyDevice:
        self._parse(uri)
        return DeviceOnlyDevice(self, f"{self.name}://", 1)


def create_driver(registry: Any) -> DeviceOnlyDriver:
    return DeviceOnlyDriver(registry)


class NoWrapAllocator(Allocator):
    """Host-visible memory that cannot alias the caller's arrays (as a GPU's mappable memory):
    the runtime stages arguments into mapped buffers instead of binding them in place."""

    can_wrap_host = False


class NoWrapDevice(InlineLocalDevice):
    allocator_class = NoWrapAllocator


class NoWrapDriver(DeviceOnlyDriver):
    name = "nowrap"
    device_class = NoWrapDevice
    cts_unsupported: ClassVar[dict[str, str]] = {}

    def create_device(self, uri: str | None = None) -> NoWrapDevice:
        self._parse(uri)
        return NoWrapDevice(self, f"{self.name}://", 1)


def create_nowrap_driver(registry: Any) -> NoWrapDriver:
    return NoWrapDriver(registry)


@hookimpl
def hal_register_drivers() -> list[DriverInfo]:
    return [DriverInfo(name="devonly", description="test driver: device-only memory",
                       factory=f"{__name__}:create_driver"),
            DriverInfo(name="nowrap", description="test driver: mappable, not wrappable",
                       factory=f"{__name__}:create_nowrap_driver")]
