"""Vulkan memory: one VkBuffer + VkDeviceMemory per hal buffer, mapped when host visible.

hal's memory types are derived from each Vulkan memory type's flags. A host-visible buffer is
mapped once; its storage is a numpy view of the mapping whose base owns the allocation, so a
numpy result handed to a caller keeps the memory (and the VkDevice) alive, and the memory is
freed when the last view and the buffer are gone. A buffer without HOST_VISIBLE memory (device
memory of a discrete GPU) has no host view: :meth:`Buffer.map` refuses it, and data moves
through :meth:`VulkanDevice.queue_write`/``queue_read`` (staging copies).

Only host-coherent memory is offered as HOST_VISIBLE, so no flush/invalidate is needed.
"""

from __future__ import annotations

import logging
from typing import Any

from hal_core.errors import HalRuntimeError, UsageError
from hal_core.hal.allocator import Allocator, BufferUsage, MemoryHeap, MemoryType
from hal_core.hal.buffer import Buffer, host_bytes
from hal_vulkan.driver.instance import result_name

log = logging.getLogger(__name__)

_VK_DEVICE_LOCAL, _VK_HOST_VISIBLE, _VK_HOST_COHERENT, _VK_HOST_CACHED = 1, 2, 4, 8
_VK_LAZY, _VK_PROTECTED = 16, 32
_HOST_BITS = (MemoryType.HOST_LOCAL | MemoryType.HOST_VISIBLE | MemoryType.HOST_COHERENT
              | MemoryType.HOST_CACHED)


def hal_memory_type(vk_flags: int, cpu_device: bool) -> MemoryType | None:
    """hal's view of a Vulkan memory type, or None for types hal does not use."""
    if vk_flags & (_VK_LAZY | _VK_PROTECTED) or vk_flags & 0xC0:  # lazily allocated, protected,
        return None  # AMD device-coherent/uncached: not for general buffers
    t = MemoryType.DEVICE_VISIBLE
    if vk_flags & _VK_DEVICE_LOCAL:
        t |= MemoryType.DEVICE_LOCAL
    if vk_flags & _VK_HOST_VISIBLE:
        if not vk_flags & _VK_HOST_COHERENT:
            return None if not vk_flags & _VK_DEVICE_LOCAL else MemoryType(t)
        t |= MemoryType.HOST_VISIBLE | MemoryType.HOST_COHERENT
        if vk_flags & _VK_HOST_CACHED:
            t |= MemoryType.HOST_CACHED
        if cpu_device or not vk_flags & _VK_DEVICE_LOCAL:
            t |= MemoryType.HOST_LOCAL
    return t


class _Extent:
    """The storage of an unmapped buffer: only a size (slicing gives a smaller extent)."""

    __slots__ = ("owner", "shape")

    def __init__(self, size: int, owner: Any) -> None:
        self.shape = (size,)
        self.owner = owner

    def __getitem__(self, s: slice) -> _Extent:
        start, stop, _ = s.indices(self.shape[0])
        return _Extent(max(0, stop - start), self.owner)


class Allocation:
    """A VkBuffer bound to its own VkDeviceMemory; freed when the last reference goes."""

    __slots__ = ("__weakref__", "buffer", "context", "memory", "size", "vk_size")

    def __init__(self, context: Any, size: int, type_index: int) -> None:
        vk, ffi, lib = context.vk, context.ffi, context.lib
        self.context = context
        self.size = size
        self.vk_size = max(4, (size + 3) & ~3)  # fills and zero-size buffers need >= 4 bytes
        self.buffer = self.memory = None
        usage = (vk.VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | vk.VK_BUFFER_USAGE_TRANSFER_SRC_BIT
                 | vk.VK_BUFFER_USAGE_TRANSFER_DST_BIT)
        info = ffi.new("VkBufferCreateInfo*", {
            "sType": vk.VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, "size": self.vk_size,
            "usage": usage, "sharingMode": vk.VK_SHARING_MODE_EXCLUSIVE})
        out = ffi.new("VkBuffer*")
        code = lib.vkCreateBuffer(context.handle, info, ffi.NULL, out)
        if code != 0:
            raise _alloc_error(vk, code, size, "vkCreateBuffer")
        self.buffer = out[0]
        reqs = ffi.new("VkMemoryRequirements*")
        lib.vkGetBufferMemoryRequirements(context.handle, self.buffer, reqs)
        if not reqs.memoryTypeBits & (1 << type_index):
            lib.vkDestroyBuffer(context.handle, self.buffer, ffi.NULL)
            raise HalRuntimeError(f"Vulkan memory type {type_index} cannot back storage buffers "
                                  f"(allowed types mask {reqs.memoryTypeBits:#x})")
        alloc = ffi.new("VkMemoryAllocateInfo*", {
            "sType": vk.VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, "allocationSize": reqs.size,
            "memoryTypeIndex": type_index})
        mem = ffi.new("VkDeviceMemory*")
        code = lib.vkAllocateMemory(context.handle, alloc, ffi.NULL, mem)
        if code != 0:
            lib.vkDestroyBuffer(context.handle, self.buffer, ffi.NULL)
            raise _alloc_error(vk, code, size, "vkAllocateMemory")
        self.memory = mem[0]
        lib.vkBindBufferMemory(context.handle, self.buffer, self.memory, 0)
        context.allocation_added()

    def map(self) -> Any:
        """A uint8 numpy array over the whole buffer whose base keeps this allocation alive."""
        import numpy as np

        ctx = self.context
        ffi = ctx.ffi
        ptr = ffi.new("void**")
        code = ctx.lib.vkMapMemory(ctx.handle, self.memory, 0, 0xFFFFFFFFFFFFFFFF, 0, ptr)
        if code != 0:
            raise HalRuntimeError(f"vkMapMemory of {self.size} bytes failed: "
                                  f"{result_name(ctx.vk, code)}")
        owner = self
        data = ffi.gc(ffi.cast("uint8_t*", ptr[0]), lambda _p: owner.free())
        return np.frombuffer(ffi.buffer(data, self.size), dtype=np.uint8)

    def free(self) -> None:
        ctx = self.context
        if self.memory is None or ctx.destroyed:
            return
        ffi, lib = ctx.ffi, ctx.lib
        lib.vkDestroyBuffer(ctx.handle, self.buffer, ffi.NULL)
        lib.vkFreeMemory(ctx.handle, self.memory, ffi.NULL)
        self.memory = self.buffer = None
        ctx.allocation_freed()

    def __del__(self) -> None:
        try:
            self.free()
        except Exception:  # noqa: BLE001 - never raise from a finalizer
            pass


def _alloc_error(vk: Any, code: int, size: int, what: str) -> HalRuntimeError:
    name = result_name(vk, code)
    if "OUT_OF" in name:
        return HalRuntimeError(f"{what} of {size} bytes failed: {name}; free buffers or "
                               f"allocate less")
    return HalRuntimeError(f"{what} of {size} bytes failed: {name}")


class VulkanBuffer(Buffer):
    """A hal buffer backed by an :class:`Allocation` (``_vk``)."""

    __slots__ = ("_vk",)


def vk_range(buffer: Buffer, offset: int) -> tuple[Any, int]:
    """(Allocation, absolute offset) of ``offset`` within ``buffer`` (which may be a subspan)."""
    root = buffer.root
    alloc = getattr(root, "_vk", None)
    if alloc is None:
        raise UsageError(f"{buffer!r} was not allocated by a vulkan device; allocate it with "
                         f"this device's allocator")
    return alloc, buffer.byte_offset + offset


def default_memory_type(types: list[MemoryType], cpu: bool) -> MemoryType:
    """What a buffer allocated without a memory type gets (what the runtime binds kernels to).

    Host-visible device memory when the host reads it at memory speed: a CPU device
    (lavapipe), or an integrated GPU whose device memory is host cached. A discrete GPU's
    host-visible device memory is an uncached BAR window the host reads at ~30 MB/s (measured
    on an H200: 22.5 s for a 64 MiB result), so there the default is device memory alone and
    the runtime moves data with ``queue_write``/``queue_read`` staging copies (0.15 s for the
    same call). Host-visible memory stays available to whoever asks for it by type.
    """
    mapped = MemoryType.DEVICE_LOCAL | MemoryType.HOST_VISIBLE
    fits = [t for t in types if (t & mapped) == mapped]
    if not fits:
        return MemoryType.DEVICE_LOCAL if not any(t & MemoryType.HOST_VISIBLE for t in types) \
            else mapped  # host memory the device reads over the bus: still host visible
    if cpu:
        return mapped
    # The type a host-visible device-memory request gets (VulkanAllocator._candidates: fewest
    # flags beyond those asked for) decides: an uncached window is read slowly.
    best = min(fits, key=lambda t: bin(int(t) & ~int(mapped)).count("1"))
    return mapped if best & MemoryType.HOST_CACHED else MemoryType.DEVICE_LOCAL


class VulkanAllocator(Allocator):
    """Allocates :class:`VulkanBuffer` objects from the device's memory types."""

    can_wrap_host = False  # device memory cannot alias caller arrays; callers copy

    def __init__(self, device: Any, context: Any, device_only: bool = False) -> None:
        physical = context.physical
        limit = physical.limits.get("maxMemoryAllocationSize", 0) or max(
            size for size, _ in physical.memory_heaps)
        super().__init__(device.id, max_allocation_size=max(s for s, _ in physical.memory_heaps))
        self._device = device
        self._context = context
        cpu = physical.device_type == "cpu"
        #: every usable Vulkan memory type (staging and command data may use any of them)
        self._all_types: list[tuple[int, MemoryType]] = []
        for index, (flags, heap) in enumerate(physical.memory_types):
            t = hal_memory_type(flags, cpu)
            if t is not None:
                self._all_types.append((index, t))
        # ``device_only`` (URI memory=device-only) offers hal buffers no host-visible memory,
        # as on a discrete GPU without a host-visible window: the staging paths then run on
        # any device, lavapipe included.
        self._types = [(i, t) for i, t in self._all_types
                       if not device_only or not t & MemoryType.HOST_VISIBLE]
        if not self._types:
            self._types = [(i, t & ~_HOST_BITS) for i, t in self._all_types]
        self._heaps = tuple(MemoryHeap(t, BufferUsage.DEFAULT if t & MemoryType.HOST_VISIBLE
                                       else BufferUsage.DEFAULT & ~BufferUsage.MAPPING,
                                       physical.memory_heaps[physical.memory_types[i][1]][0])
                            for i, t in self._types)
        self.max_vk_allocation = limit
        #: What a buffer allocated without a memory type gets: host-visible device memory,
        #: or device memory alone when hal buffers get no host-visible memory (the runtime
        #: then moves data with queue_write/queue_read).
        self.default_memory_type = default_memory_type([t for _, t in self._types], cpu)
        self.default_usage = (BufferUsage.DEFAULT if self.default_memory_type
                              & MemoryType.HOST_VISIBLE else BufferUsage.DEFAULT
                              & ~BufferUsage.MAPPING)
        self._choice: dict[tuple[MemoryType, bool], list[tuple[int, MemoryType]]] = {}

    def _candidates(self, memory_type: MemoryType, internal: bool
                    ) -> list[tuple[int, MemoryType]]:
        """Memory types that serve a request, best first (cached: flag math is slow)."""
        key = MemoryType(memory_type)
        hit = self._choice.get((key, internal))
        if hit is not None:
            return hit
        types = self._all_types if internal else self._types
        # Fewest flags beyond those asked for first: pure device memory for a DEVICE_LOCAL
        # request on a discrete GPU rather than its host-visible window.
        fits = sorted(((i, t) for i, t in types if (t & key) == key),
                      key=lambda it: bin(int(it[1]) & ~int(key)).count("1"))
        if key & MemoryType.HOST_VISIBLE and key & MemoryType.DEVICE_LOCAL:
            # hal's default asks for both; a GPU whose host-visible device memory is missing
            # (or full: a 256 MiB BAR window) serves it from host-visible memory that the
            # device reads over the bus.
            relaxed = key & ~MemoryType.DEVICE_LOCAL & ~MemoryType.DEVICE_VISIBLE
            fits += [(i, t) for i, t in types if (t & relaxed) == relaxed and (i, t) not in fits]
        if not fits:
            have = ", ".join(f"{t!r}" for _, t in types)
            raise UsageError(f"device {self._device.id} cannot allocate memory type "
                             f"{memory_type!r}; its memory types are: {have}")
        self._choice[(key, internal)] = fits
        return fits

    def allocate_buffer(self, size: int, memory_type: MemoryType | None = None,
                        usage: BufferUsage | None = None, internal: bool = False
                        ) -> VulkanBuffer:
        """A new zeroed buffer (memory type and usage default to :attr:`default_memory_type`
        and :attr:`default_usage`). ``internal`` ones (staging, command data) are neither
        zeroed nor counted in :meth:`statistics`."""
        if memory_type is None:
            memory_type = self.default_memory_type
        if usage is None:
            # MAPPING is dropped below unless the memory is host visible: a buffer asked for
            # by type as HOST_VISIBLE is mappable even where the default memory is not (H200).
            usage = BufferUsage.DEFAULT
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise UsageError(f"buffer size must be a non-negative int of bytes, got {size!r}")
        if size > self.max_vk_allocation:
            raise UsageError(f"buffer of {size} bytes exceeds the maximum allocation size "
                             f"{self.max_vk_allocation} of device {self._device.id}")
        self._device._check_open("allocate_buffer")
        error: HalRuntimeError | None = None
        for index, t in self._candidates(memory_type, internal):
            try:
                alloc = Allocation(self._context, size, index)
                break
            except HalRuntimeError as e:  # out of this heap: try the next type that fits
                if "OUT_OF" not in str(e):
                    raise
                error = e
        else:
            assert error is not None
            raise error
        if not t & MemoryType.HOST_VISIBLE:
            usage = usage & ~BufferUsage.MAPPING
        storage = alloc.map() if t & MemoryType.HOST_VISIBLE else _Extent(size, alloc)
        buf = VulkanBuffer(self, storage, t, usage)
        buf._vk = alloc
        if not internal:
            with self._lock:
                self.bytes_allocated += size
        if internal:
            pass  # staging and command data: every byte is written before it is read
        elif t & MemoryType.HOST_VISIBLE:
            storage[:] = 0
        else:
            self._device.zero_device_buffer(buf)
        return buf

    def import_host(self, data: Any, usage: BufferUsage = BufferUsage.DEFAULT,
                    internal: bool = False) -> VulkanBuffer:
        src = host_bytes(data, "Allocator.import_host")
        memory_type = (MemoryType.DEVICE_LOCAL | MemoryType.HOST_VISIBLE if internal
                       else self.default_memory_type)  # device memory: staged below
        if not memory_type & MemoryType.HOST_VISIBLE:
            usage = usage & ~BufferUsage.MAPPING
        buf = self.allocate_buffer(src.size, memory_type, usage=usage, internal=internal)
        if buf.memory_type & MemoryType.HOST_VISIBLE:
            buf._storage[:] = src
        else:
            self._device.write_now(src, buf)
        return buf

    def wrap_host(self, array: Any, usage: BufferUsage = BufferUsage.DEFAULT) -> Buffer:
        raise UsageError("the vulkan allocator cannot wrap host memory (can_wrap_host is False); "
                         "allocate a buffer and write into it")
