"""The HAL object model: what every driver implements and every runtime uses.

Driver -> Device (allocator, executable cache, queue) -> Buffer / BufferView, CommandBuffer,
Semaphore / Fence, Executable / ExecutableCache. One object a module, as in IREE's
``runtime/src/iree/hal/``. Importing this package does not import numpy.
"""

from hal_core.hal.allocator import BUFFER_ALIGNMENT, Allocator, BufferUsage, MemoryType
from hal_core.hal.buffer import Buffer
from hal_core.hal.buffer_view import BufferView
from hal_core.hal.command_buffer import CommandBuffer, CommandBufferMode, CommandBufferState
from hal_core.hal.device import Device
from hal_core.hal.driver import DeviceInfo, Driver, parse_device_uri
from hal_core.hal.executable import EntryPoint, ExecutableLoader, LocalExecutable
from hal_core.hal.executable_cache import ExecutableCache, LoaderExecutableCache
from hal_core.hal.fence import Fence
from hal_core.hal.semaphore import Semaphore

__all__ = [
    "BUFFER_ALIGNMENT",
    "Allocator",
    "Buffer",
    "BufferUsage",
    "BufferView",
    "CommandBuffer",
    "CommandBufferMode",
    "CommandBufferState",
    "Device",
    "DeviceInfo",
    "Driver",
    "EntryPoint",
    "ExecutableCache",
    "ExecutableLoader",
    "Fence",
    "LoaderExecutableCache",
    "LocalExecutable",
    "MemoryType",
    "Semaphore",
    "parse_device_uri",
]
