"""Vulkan command buffers: hal commands recorded once into VkCommandBuffers, submitted many times.

A hal command buffer owns *instances*, each a recorded VkCommandBuffer with its own descriptor
sets. A submission takes a free instance (one not on the GPU), points the descriptor sets of
binding-table slots at the table's buffers (prebuilt ``VkWriteDescriptorSet`` arrays, updated
in place) and submits it; a second submission while the first is in flight records another
instance. Transfer commands (fill, update, copy) name their buffers inside the VkCommandBuffer,
so an instance whose transfer commands use slots is re-recorded when those slots change.

Ordering: a dispatch after a dispatch is ordered only by an explicit ``execution_barrier`` (as
in hal's model); transfer commands are always ordered against their neighbours, and every
command buffer ends with a barrier that makes its writes visible to the host.

Updates and the unaligned edges of 1- and 2-byte fills are copies from one small data buffer
made at ``end()`` (``vkCmdCopyBuffer`` has no alignment rules; ``vkCmdFillBuffer`` and
``vkCmdUpdateBuffer`` need multiples of 4).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from hal_core.errors import HalRuntimeError, UsageError
from hal_core.hal.buffer import Buffer, check_fill_alignment
from hal_core.hal.command_buffer import (
    command_refs,
    BarrierCmd,
    CommandBuffer,
    CopyCmd,
    DispatchCmd,
    FillCmd,
    Ref,
    UpdateCmd,
)
from hal_vulkan.driver.executable import POOL_UPDATE_AFTER_BIND, VulkanExecutable
from hal_vulkan.driver.instance import check
from hal_vulkan.driver.memory import vk_range

WHOLE_SIZE = 0xFFFFFFFFFFFFFFFF  # the package's VK_WHOLE_SIZE is -1
_EDGE = 12  # bytes of pattern kept per fill for its unaligned edges
_UNRECORDED = object()


class _Instance:
    __slots__ = ("busy", "cb", "desc_key", "pool", "sets", "transfer_key", "writes", "infos",
                 "slot_writes")

    def __init__(self) -> None:
        self.busy = False
        self.transfer_key: Any = None
        self.desc_key: Any = None


class VulkanCommandBuffer(CommandBuffer):
    """A hal command buffer of the vulkan device."""

    def _compile(self) -> None:
        device = self.device
        ctx = device.context
        limits = ctx.physical.limits
        self._ctx = ctx
        self._lock = threading.Lock()
        self._instances: list[_Instance] = []
        extents = [0] * self.slots_used
        roots: dict[int, Buffer] = {}
        blob = bytearray()
        self._blob_offsets: list[int] = []  # per command: its data in the blob (or -1)
        self._transfer_slots: set[int] = set()
        self._dispatches: list[DispatchCmd] = []
        max_count = limits["maxComputeWorkGroupCount"]
        for cmd in self.commands:
            for ref in command_refs(cmd):
                if ref.slot is not None:
                    extents[ref.slot] = max(extents[ref.slot], ref.offset + (ref.length or 0))
                    if not isinstance(cmd, DispatchCmd):
                        self._transfer_slots.add(ref.slot)
                else:
                    roots[id(ref.buffer.root)] = ref.buffer.root
                    vk_range(ref.buffer, 0)  # a buffer of another device is refused here
            offset = -1
            if isinstance(cmd, UpdateCmd) and cmd.data:
                offset = len(blob)
                blob += cmd.data + bytes(-len(cmd.data) % 4)
            elif isinstance(cmd, FillCmd):
                offset = len(blob)
                blob += cmd.pattern * (_EDGE // len(cmd.pattern))
            elif isinstance(cmd, DispatchCmd):
                if not isinstance(cmd.executable, VulkanExecutable):
                    raise UsageError(f"CommandBuffer.dispatch: the executable is "
                                     f"{type(cmd.executable).__name__}, not one this vulkan "
                                     f"device prepared; prepare it with "
                                     f"device.executable_cache.prepare('spirv', ...)")
                if cmd.executable.context is not ctx:
                    raise UsageError("CommandBuffer.dispatch: the executable was prepared by "
                                     "another device; prepare it on this one")
                if any(n > m for n, m in zip(cmd.workgroup_count, max_count)):
                    raise UsageError(
                        f"CommandBuffer.dispatch: workgroup count {cmd.workgroup_count} exceeds "
                        f"the device's maxComputeWorkGroupCount {tuple(max_count)}; the target "
                        f"must split the grid")
                self._dispatches.append(cmd)
            self._blob_offsets.append(offset)
        self.slot_extents = tuple(extents)
        self.recorded_buffers = tuple(roots.values())
        self._blob = device.allocator.import_host(bytes(blob), internal=True) if blob else None
        self._min_align = limits["minStorageBufferOffsetAlignment"]
        self._max_range = limits["maxStorageBufferRange"]
        vk, ffi = ctx.vk, ctx.ffi
        self._barrier = ffi.new("VkMemoryBarrier*", {
            "sType": vk.VK_STRUCTURE_TYPE_MEMORY_BARRIER,
            "srcAccessMask": vk.VK_ACCESS_SHADER_WRITE_BIT | vk.VK_ACCESS_TRANSFER_WRITE_BIT,
            "dstAccessMask": vk.VK_ACCESS_SHADER_READ_BIT | vk.VK_ACCESS_SHADER_WRITE_BIT
            | vk.VK_ACCESS_TRANSFER_READ_BIT | vk.VK_ACCESS_TRANSFER_WRITE_BIT})
        self._host_barrier = ffi.new("VkMemoryBarrier*", {
            "sType": vk.VK_STRUCTURE_TYPE_MEMORY_BARRIER,
            "srcAccessMask": vk.VK_ACCESS_SHADER_WRITE_BIT | vk.VK_ACCESS_TRANSFER_WRITE_BIT,
            "dstAccessMask": vk.VK_ACCESS_HOST_READ_BIT})
        self._stages = (vk.VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT
                        | vk.VK_PIPELINE_STAGE_TRANSFER_BIT)
        pool_info = ffi.new("VkCommandPoolCreateInfo*", {
            "sType": vk.VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
            "flags": vk.VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
            "queueFamilyIndex": ctx.queue_family})
        pool = ffi.new("VkCommandPool*")
        check(vk, ctx.lib.vkCreateCommandPool(ctx.handle, pool_info, ffi.NULL, pool),
              "vkCreateCommandPool")
        self._pool = pool[0]
        device.track(self)

    # -- teardown -----------------------------------------------------------------------------

    def destroy(self) -> None:
        ctx = getattr(self, "_ctx", None)
        if ctx is None or ctx.destroyed or self._pool is None:
            return
        ffi, lib = ctx.ffi, ctx.lib
        for inst in self._instances:
            lib.vkDestroyDescriptorPool(ctx.handle, inst.pool, ffi.NULL)
        lib.vkDestroyCommandPool(ctx.handle, self._pool, ffi.NULL)
        self._pool = None
        self._instances = []

    def __del__(self) -> None:
        try:
            self.destroy()
        except Exception:  # noqa: BLE001 - never raise from a finalizer
            pass

    # -- binding tables -----------------------------------------------------------------------

    def bind(self, table: Sequence[Any] | None) -> tuple:
        """Resolve a binding table to (Allocation, offset, length) per slot, validating it."""
        for root in self.recorded_buffers:
            if root._released:
                raise UsageError(
                    "queue_execute: a buffer recorded in this command buffer was released "
                    "(queue_dealloca or release()); record it again with live buffers")
        if not self.slots_used:
            return ()
        slots = []
        for i, extent in enumerate(self.slot_extents):
            entry = table[i]
            if isinstance(entry, Buffer):
                if entry._root._released:
                    entry.check_range(0, None, f"binding table slot {i}")
                buf, off, length = entry, 0, entry.size
            elif isinstance(entry, tuple) and len(entry) == 3 and isinstance(entry[0], Buffer):
                buf = entry[0]
                off, length = buf.check_range(entry[1], entry[2], f"binding table slot {i}")
            else:
                raise UsageError(f"binding table slot {i}: expected a Buffer or (Buffer, "
                                 f"offset, length), got {type(entry).__name__}")
            if length < extent:
                raise UsageError(f"binding table slot {i}: the command buffer uses bytes up to "
                                 f"{extent} of it but the bound buffer has {length}; bind a "
                                 f"larger buffer")
            alloc, absolute = vk_range(buf, off)
            if alloc.context is not self._ctx:
                raise UsageError(f"binding table slot {i}: the buffer belongs to another device")
            slots.append((alloc, absolute, length))
        return tuple(slots)

    def _resolve(self, ref: Ref, slots: tuple) -> tuple[Any, int, int]:
        if ref.buffer is not None:
            alloc, off = vk_range(ref.buffer, ref.offset)
            return alloc, off, ref.length
        alloc, base, length = slots[ref.slot]
        size = length - ref.offset if ref.length is None else ref.length
        return alloc, base + ref.offset, size

    # -- instances ----------------------------------------------------------------------------

    def acquire(self, slots: tuple) -> _Instance:
        """A free instance, recorded for ``slots`` and with its descriptor sets pointing there.

        Without update-after-bind, updating a bound descriptor set invalidates the recording,
        so then every slot is part of the recording's key (and descriptors are written first).
        """
        uab = self._ctx.update_after_bind
        if uab:
            key = tuple(slots[s] for s in sorted(self._transfer_slots)) \
                if self._transfer_slots else None
        else:
            key = slots
        with self._lock:
            inst = next((i for i in self._instances if not i.busy and i.transfer_key == key),
                        None)
            fresh = inst is None
            if fresh:
                inst = next((i for i in self._instances if not i.busy), None)
                if inst is None:
                    inst = self._new_instance(slots)
                    self._instances.append(inst)
            inst.busy = True
        try:
            if fresh:
                inst.transfer_key = _UNRECORDED  # until _record succeeds
                if not uab:
                    self._update_descriptors(inst, slots)
                self._record(inst, slots)
                inst.transfer_key = key
            if uab:
                self._update_descriptors(inst, slots)
        except BaseException:
            inst.busy = False
            raise
        return inst

    def release_instance(self, inst: _Instance) -> None:
        inst.busy = False

    def _new_instance(self, slots: tuple) -> _Instance:
        ctx = self._ctx
        vk, ffi, lib = ctx.vk, ctx.ffi, ctx.lib
        inst = _Instance()
        alloc_info = ffi.new("VkCommandBufferAllocateInfo*", {
            "sType": vk.VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO, "commandPool": self._pool,
            "level": vk.VK_COMMAND_BUFFER_LEVEL_PRIMARY, "commandBufferCount": 1})
        cb = ffi.new("VkCommandBuffer*")
        check(vk, lib.vkAllocateCommandBuffers(ctx.handle, alloc_info, cb),
              "vkAllocateCommandBuffers")
        inst.cb = cb[0]
        n_sets = max(1, len(self._dispatches))
        n_desc = max(1, sum(len(d.bindings) for d in self._dispatches))
        sizes = ffi.new("VkDescriptorPoolSize[1]")
        sizes[0].type = vk.VK_DESCRIPTOR_TYPE_STORAGE_BUFFER
        sizes[0].descriptorCount = n_desc
        pool_info = ffi.new("VkDescriptorPoolCreateInfo*", {
            "sType": vk.VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO, "maxSets": n_sets,
            "flags": POOL_UPDATE_AFTER_BIND if ctx.update_after_bind else 0,
            "poolSizeCount": 1, "pPoolSizes": sizes})
        pool = ffi.new("VkDescriptorPool*")
        check(vk, lib.vkCreateDescriptorPool(ctx.handle, pool_info, ffi.NULL, pool),
              "vkCreateDescriptorPool")
        inst.pool = pool[0]
        try:
            self._fill_instance(inst, slots, n_sets, n_desc)
        except BaseException:
            lib.vkDestroyDescriptorPool(ctx.handle, inst.pool, ffi.NULL)
            lib.vkFreeCommandBuffers(ctx.handle, self._pool, 1, cb)
            raise
        return inst

    def _fill_instance(self, inst: _Instance, slots: tuple, n_sets: int, n_desc: int) -> None:
        ctx = self._ctx
        vk, ffi, lib = ctx.vk, ctx.ffi, ctx.lib
        inst.sets = ffi.new("VkDescriptorSet[]", n_sets)
        if self._dispatches:
            layouts = ffi.new("VkDescriptorSetLayout[]", [
                d.executable.set_layouts[d.entry] for d in self._dispatches])
            set_info = ffi.new("VkDescriptorSetAllocateInfo*", {
                "sType": vk.VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                "descriptorPool": inst.pool, "descriptorSetCount": len(self._dispatches),
                "pSetLayouts": layouts})
            check(vk, lib.vkAllocateDescriptorSets(ctx.handle, set_info, inst.sets),
                  "vkAllocateDescriptorSets")
        # One write per binding; concrete ones are written now, slot ones per submission.
        n = n_desc
        inst.infos = ffi.new("VkDescriptorBufferInfo[]", n)
        inst.writes = ffi.new("VkWriteDescriptorSet[]", n)
        fixed, slot_writes = [], []
        k = 0
        for d_index, d in enumerate(self._dispatches):
            for b_index, ref in enumerate(d.bindings):
                w = inst.writes[k]
                w.sType = vk.VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET
                w.dstSet = inst.sets[d_index]
                w.dstBinding = b_index
                w.descriptorCount = 1
                w.descriptorType = vk.VK_DESCRIPTOR_TYPE_STORAGE_BUFFER
                w.pBufferInfo = inst.infos + k
                if ref.buffer is None:
                    slot_writes.append((k, ref))
                else:
                    self._set_info(inst.infos[k], *self._resolve(ref, slots), d, b_index)
                    fixed.append(k)
                k += 1
        if fixed:
            # Concrete writes are contiguous only by chance: write them one by one.
            for k in fixed:
                lib.vkUpdateDescriptorSets(ctx.handle, 1, inst.writes + k, 0, ffi.NULL)
        # Slot writes go first in a compact array so that one call updates them all.
        inst.slot_writes = [(ref, k) for k, ref in slot_writes]
        if slot_writes:
            compact = ffi.new("VkWriteDescriptorSet[]", len(slot_writes))
            compact_infos = ffi.new("VkDescriptorBufferInfo[]", len(slot_writes))
            for j, (k, _) in enumerate(slot_writes):
                compact[j] = inst.writes[k]
                compact[j].pBufferInfo = compact_infos + j
            inst.writes, inst.infos = compact, compact_infos
            inst.slot_writes = [(ref, j, self._binding_of(k)) for j, (k, ref) in
                                enumerate(slot_writes)]

    def _binding_of(self, k: int) -> tuple[DispatchCmd, int]:
        for d in self._dispatches:
            if k < len(d.bindings):
                return d, k
            k -= len(d.bindings)
        raise AssertionError("binding index out of range")

    def _set_info(self, info: Any, alloc: Any, offset: int, length: int, d: DispatchCmd,
                  b_index: int) -> None:
        if offset % self._min_align:
            name = d.executable.entry_points[d.entry].name
            raise UsageError(
                f"dispatch of {name!r} binding {b_index}: offset {offset} is not a multiple of "
                f"the device's minStorageBufferOffsetAlignment {self._min_align}; bind at "
                f"64-byte aligned offsets")
        # Whole 32-bit words: SPIR-V addresses 8/16-bit data through words, and a word that
        # straddles the range end would be dropped (robust access) or undefined. Allocations
        # are padded to 4 bytes, so rounding up stays inside the buffer.
        length = min((length + 3) & ~3, alloc.vk_size - offset)
        if length > self._max_range:
            length = self._max_range  # the target keeps accesses within maxStorageBufferRange
        info.buffer = alloc.buffer
        info.offset = offset
        info.range = length if length > 0 else WHOLE_SIZE

    def _update_descriptors(self, inst: _Instance, slots: tuple) -> None:
        if not inst.slot_writes:
            return
        key = slots
        if inst.desc_key == key:
            return
        infos = inst.infos
        for ref, j, (d, b_index) in inst.slot_writes:
            self._set_info(infos[j], *self._resolve(ref, slots), d, b_index)
        ctx = self._ctx
        ctx.lib.vkUpdateDescriptorSets(ctx.handle, len(inst.slot_writes), inst.writes, 0,
                                       ctx.ffi.NULL)
        inst.desc_key = key

    # -- recording ----------------------------------------------------------------------------

    def _record(self, inst: _Instance, slots: tuple) -> None:
        ctx = self._ctx
        vk, ffi, lib = ctx.vk, ctx.ffi, ctx.lib
        cb = inst.cb
        lib.vkResetCommandBuffer(cb, 0)
        begin = ffi.new("VkCommandBufferBeginInfo*", {
            "sType": vk.VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO})
        check(vk, lib.vkBeginCommandBuffer(cb, begin), "vkBeginCommandBuffer")
        stages = self._stages
        region = ffi.new("VkBufferCopy*")
        bind_point = vk.VK_PIPELINE_BIND_POINT_COMPUTE
        prev = None  # "dispatch" / "transfer" / None
        dispatch_index = 0
        blob = self._blob._vk.buffer if self._blob is not None else None

        def barrier() -> None:
            lib.vkCmdPipelineBarrier(cb, stages, stages, 0, 1, self._barrier, 0, ffi.NULL, 0,
                                     ffi.NULL)

        def copy(src: Any, src_off: int, dst: Any, dst_off: int, size: int) -> None:
            if size:
                region.srcOffset, region.dstOffset, region.size = src_off, dst_off, size
                lib.vkCmdCopyBuffer(cb, src, dst, 1, region)

        for index, cmd in enumerate(self.commands):
            if isinstance(cmd, BarrierCmd):
                if prev is not None:
                    barrier()
                    prev = None
                continue
            kind = "dispatch" if isinstance(cmd, DispatchCmd) else "transfer"
            if prev is not None and (kind == "transfer" or prev == "transfer"):
                barrier()
            prev = kind
            if isinstance(cmd, DispatchCmd):
                self._record_dispatch(cb, cmd, inst.sets + dispatch_index, bind_point)
                dispatch_index += 1
                continue
            if isinstance(cmd, CopyCmd):
                src, so, n = self._resolve(cmd.source, slots)
                dst, do, _ = self._resolve(cmd.target, slots)
                if src is dst and so < do + n and do < so + n and n:
                    raise HalRuntimeError(f"copy of {n} bytes between overlapping ranges "
                                          f"(offsets {so} and {do}) of one buffer")
                copy(src.buffer, so, dst.buffer, do, n)
            elif isinstance(cmd, UpdateCmd):
                dst, do, n = self._resolve(cmd.target, slots)
                copy(blob, self._blob_offsets[index], dst.buffer, do, len(cmd.data))
            else:
                dst, off, n = self._resolve(cmd.target, slots)
                if n % len(cmd.pattern):
                    check_fill_alignment(cmd.target.offset, n, len(cmd.pattern), "fill")
                self._record_fill(cb, cmd.pattern, dst.buffer, off, n, blob,
                                  self._blob_offsets[index], copy)
        lib.vkCmdPipelineBarrier(cb, stages, vk.VK_PIPELINE_STAGE_HOST_BIT, 0, 1,
                                 self._host_barrier, 0, ffi.NULL, 0, ffi.NULL)
        check(vk, lib.vkEndCommandBuffer(cb), "vkEndCommandBuffer")

    def _record_dispatch(self, cb: Any, cmd: DispatchCmd, set_ptr: Any, bind_point: int) -> None:
        if not all(cmd.workgroup_count):
            return
        ctx = self._ctx
        ffi, lib = ctx.ffi, ctx.lib
        exe = cmd.executable
        layout = exe.pipeline_layouts[cmd.entry]
        lib.vkCmdBindPipeline(cb, bind_point, exe.pipelines[cmd.entry])
        lib.vkCmdBindDescriptorSets(cb, bind_point, layout, 0, 1, set_ptr, 0, ffi.NULL)
        if cmd.constants:
            words = ffi.new("uint32_t[]", list(cmd.constants))
            lib.vkCmdPushConstants(cb, layout, ctx.vk.VK_SHADER_STAGE_COMPUTE_BIT, 0,
                                   4 * len(cmd.constants), words)
        lib.vkCmdDispatch(cb, *cmd.workgroup_count)

    def _record_fill(self, cb: Any, pattern: bytes, dst: Any, off: int, n: int, blob: Any,
                     blob_off: int, copy: Any) -> None:
        if not n:
            return
        plen = len(pattern)
        start = (off + 3) & ~3
        end = (off + n) & ~3
        if start >= end:  # no whole aligned word inside: copy it all from the pattern
            copy(blob, blob_off, dst, off, n)
            return
        if start > off:
            copy(blob, blob_off, dst, off, start - off)
        phase = (start - off) % plen
        word = (pattern * (8 // plen))[phase:phase + 4]
        self._ctx.lib.vkCmdFillBuffer(cb, dst, start, end - start, int.from_bytes(word, "little"))
        if end < off + n:
            copy(blob, blob_off + (end - off) % plen, dst, end, off + n - end)
