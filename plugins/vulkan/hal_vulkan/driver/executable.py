"""SPIR-V executables: one VkShaderModule, one compute pipeline per entry point.

The ``spirv`` format's payload is a SPIR-V binary (little-endian words) holding every entry
point of the executable; the variant's entry points name them in order. The interface the
target and this driver agree on:

* descriptor set 0, binding ``i`` = the dispatch's binding slot ``i``, all storage buffers;
* push constants: the dispatch's constants as a block of uint32 words at offset 0;
* the workgroup size is declared in the shader (LocalSize); the dispatch gives the count.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from hal_core.errors import IncompatibleModuleError, ModuleFormatError, UsageError
from hal_core.hal.executable import EntryPoint
from hal_core.hal.executable_cache import as_entry_point
from hal_vulkan.driver.instance import result_name

log = logging.getLogger(__name__)

FORMAT = "spirv"
# Vulkan 1.2 core values (the package defines only the _EXT aliases, as None).
_BINDING_UPDATE_AFTER_BIND = 0x1
_LAYOUT_UPDATE_AFTER_BIND_POOL = 0x2
POOL_UPDATE_AFTER_BIND = 0x2
SPIRV_MAGIC = 0x07230203


def scan_spirv(data: bytes) -> tuple[tuple[int, int], dict[str, tuple[int, int, int] | None]]:
    """(SPIR-V version, {GLCompute entry point name: LocalSize or None}) of a binary.

    Drivers crash (lavapipe segfaults) on a pipeline naming a missing entry point, so names
    and workgroup sizes are checked here first.
    """
    import struct

    words = struct.unpack(f"<{len(data) // 4}I", data)
    version = (words[1] >> 16 & 0xFF, words[1] >> 8 & 0xFF)
    by_id: dict[int, str] = {}
    sizes: dict[int, tuple[int, int, int]] = {}
    i = 5
    while i < len(words):
        count, opcode = words[i] >> 16, words[i] & 0xFFFF
        if count == 0 or i + count > len(words):
            raise ModuleFormatError(f"spirv payload is malformed: instruction at word {i} has "
                                    f"length {count}")
        if opcode == 15 and words[i + 1] == 5:  # OpEntryPoint GLCompute
            raw = data[4 * (i + 3):4 * (i + count)]
            by_id[words[i + 2]] = raw[:raw.index(0)].decode(errors="replace") if 0 in raw \
                else raw.decode(errors="replace")
        elif opcode == 16 and count >= 6 and words[i + 2] == 17:  # OpExecutionMode LocalSize
            sizes[words[i + 1]] = (words[i + 3], words[i + 4], words[i + 5])
        elif opcode == 54:  # OpFunction: the declarations are over
            break
        i += count
    return version, {name: sizes.get(fid) for fid, name in by_id.items()}


class VulkanExecutable:
    """Pipelines of one SPIR-V module; ``entry_points`` as the variant declared them."""

    format = FORMAT

    def __init__(self, context: Any, payload: bytes | memoryview,
                 entry_points: tuple[EntryPoint, ...]) -> None:
        vk, ffi, lib = context.vk, context.ffi, context.lib
        self.context = context
        self.entry_points = entry_points
        self.set_layouts: list[Any] = []
        self.pipeline_layouts: list[Any] = []
        self.pipelines: list[Any] = []
        self.push_sizes: list[int] = []
        self._module = None
        data = bytes(payload)
        if len(data) < 20 or len(data) % 4:
            raise ModuleFormatError(f"spirv payload of {len(data)} bytes is not a SPIR-V binary "
                                    f"(a whole number of 32-bit words, header of 5)")
        if int.from_bytes(data[:4], "little") != SPIRV_MAGIC:
            raise ModuleFormatError(f"spirv payload does not start with the SPIR-V magic number "
                                    f"0x07230203 (found 0x{int.from_bytes(data[:4], 'little'):08x}"
                                    f"); expected little-endian SPIR-V words")
        limits = context.physical.limits
        version, found = scan_spirv(data)
        physical = context.physical
        api_minor = physical.api_version >> 12 & 0x3FF
        max_minor = {0: 0, 1: 3, 2: 5}.get(api_minor, 6)
        if version[1] == 4 and "VK_KHR_spirv_1_4" in physical.extensions:
            max_minor = max(max_minor, 4)
        if version[0] != 1 or version[1] > max_minor:
            raise IncompatibleModuleError(
                f"spirv payload is SPIR-V {version[0]}.{version[1]}, but device "
                f"{physical.name!r} (Vulkan {physical.api_text()}) takes SPIR-V up to 1.{max_minor}")
        for ep in entry_points:
            if ep.name not in found:
                raise ModuleFormatError(
                    f"spirv payload has no GLCompute entry point {ep.name!r}; it has "
                    f"{sorted(found)}")
            size = found[ep.name]
            if size is not None:
                over = any(a > b for a, b in zip(size, limits["maxComputeWorkGroupSize"]))
                if over or size[0] * size[1] * size[2] > limits[
                        "maxComputeWorkGroupInvocations"]:
                    raise IncompatibleModuleError(
                        f"entry point {ep.name!r} has workgroup size {size}, beyond device "
                        f"{physical.name!r}'s maxComputeWorkGroupSize "
                        f"{tuple(limits['maxComputeWorkGroupSize'])} / "
                        f"maxComputeWorkGroupInvocations "
                        f"{limits['maxComputeWorkGroupInvocations']}")
        code = ffi.new("uint32_t[]", len(data) // 4)
        ffi.memmove(code, data, len(data))
        info = ffi.new("VkShaderModuleCreateInfo*", {
            "sType": vk.VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO, "codeSize": len(data),
            "pCode": code})
        out = ffi.new("VkShaderModule*")
        result = lib.vkCreateShaderModule(context.handle, info, ffi.NULL, out)
        if result != 0:
            raise ModuleFormatError(f"vkCreateShaderModule rejected the spirv payload: "
                                    f"{result_name(vk, result)}")
        self._module = out[0]
        try:
            for ep in entry_points:
                self._create_pipeline(ep, limits)
        except BaseException:
            self.destroy()
            raise

    def _create_pipeline(self, ep: EntryPoint, limits: dict[str, Any]) -> None:
        ctx = self.context
        vk, ffi, lib = ctx.vk, ctx.ffi, ctx.lib
        push = 4 * ep.constant_count
        if push > limits["maxPushConstantsSize"]:
            raise IncompatibleModuleError(
                f"entry point {ep.name!r} takes {ep.constant_count} constants "
                f"({push} bytes) but the device allows {limits['maxPushConstantsSize']} bytes "
                f"of push constants")
        if ep.binding_count > limits["maxPerStageDescriptorStorageBuffers"]:
            raise IncompatibleModuleError(
                f"entry point {ep.name!r} takes {ep.binding_count} bindings but the device "
                f"allows {limits['maxPerStageDescriptorStorageBuffers']} storage buffers")
        bindings = ffi.new("VkDescriptorSetLayoutBinding[]", max(1, ep.binding_count))
        for i in range(ep.binding_count):
            bindings[i].binding = i
            bindings[i].descriptorType = vk.VK_DESCRIPTOR_TYPE_STORAGE_BUFFER
            bindings[i].descriptorCount = 1
            bindings[i].stageFlags = vk.VK_SHADER_STAGE_COMPUTE_BIT
        fields = {"sType": vk.VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
                  "bindingCount": ep.binding_count, "pBindings": bindings}
        if ctx.update_after_bind and ep.binding_count:
            flags = ffi.new("VkDescriptorBindingFlags[]", [_BINDING_UPDATE_AFTER_BIND]
                            * ep.binding_count)
            flag_info = ffi.new("VkDescriptorSetLayoutBindingFlagsCreateInfo*", {
                "sType": vk.VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_BINDING_FLAGS_CREATE_INFO,
                "bindingCount": ep.binding_count, "pBindingFlags": flags})
            fields["pNext"] = ffi.cast("void*", flag_info)
            fields["flags"] = _LAYOUT_UPDATE_AFTER_BIND_POOL
        set_info = ffi.new("VkDescriptorSetLayoutCreateInfo*", fields)
        set_layout = ffi.new("VkDescriptorSetLayout*")
        _check(vk, lib.vkCreateDescriptorSetLayout(ctx.handle, set_info, ffi.NULL, set_layout),
               "vkCreateDescriptorSetLayout", ep)
        self.set_layouts.append(set_layout[0])
        ranges = ffi.new("VkPushConstantRange[1]")
        ranges[0].stageFlags = vk.VK_SHADER_STAGE_COMPUTE_BIT
        ranges[0].offset = 0
        ranges[0].size = push
        layouts = ffi.new("VkDescriptorSetLayout[1]", [set_layout[0]])
        layout_info = ffi.new("VkPipelineLayoutCreateInfo*", {
            "sType": vk.VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO, "setLayoutCount": 1,
            "pSetLayouts": layouts, "pushConstantRangeCount": 1 if push else 0,
            "pPushConstantRanges": ranges})
        layout = ffi.new("VkPipelineLayout*")
        _check(vk, lib.vkCreatePipelineLayout(ctx.handle, layout_info, ffi.NULL, layout),
               "vkCreatePipelineLayout", ep)
        self.pipeline_layouts.append(layout[0])
        name = ffi.new("char[]", ep.name.encode())
        stage = ffi.new("VkPipelineShaderStageCreateInfo*", {
            "sType": vk.VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
            "stage": vk.VK_SHADER_STAGE_COMPUTE_BIT, "module": self._module, "pName": name})
        info = ffi.new("VkComputePipelineCreateInfo[1]")
        info[0].sType = vk.VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO
        info[0].stage = stage[0]  # copied by value; `name` stays alive in this frame
        info[0].layout = layout[0]
        pipeline = ffi.new("VkPipeline*")
        _check(vk, lib.vkCreateComputePipelines(ctx.handle, ffi.NULL, 1, info, ffi.NULL,
                                                pipeline), "vkCreateComputePipelines", ep)
        self.pipelines.append(pipeline[0])
        self.push_sizes.append(push)

    def destroy(self) -> None:
        ctx = self.context
        if ctx.destroyed:
            return
        ffi, lib = ctx.ffi, ctx.lib
        for p in self.pipelines:
            lib.vkDestroyPipeline(ctx.handle, p, ffi.NULL)
        for pl in self.pipeline_layouts:
            lib.vkDestroyPipelineLayout(ctx.handle, pl, ffi.NULL)
        for sl in self.set_layouts:
            lib.vkDestroyDescriptorSetLayout(ctx.handle, sl, ffi.NULL)
        if self._module is not None:
            lib.vkDestroyShaderModule(ctx.handle, self._module, ffi.NULL)
        self.pipelines, self.pipeline_layouts, self.set_layouts = [], [], []
        self._module = None


def _check(vk: Any, code: int, what: str, ep: EntryPoint) -> None:
    if code != 0:
        raise ModuleFormatError(f"{what} for entry point {ep.name!r} failed: "
                                f"{result_name(vk, code)} (is the entry point in the SPIR-V "
                                f"module, with a LocalSize the device allows?)")


class VulkanExecutableCache:
    """Prepares ``spirv`` payloads on one device. Executables live until the device closes."""

    def __init__(self, device: Any, context: Any) -> None:
        self.device_id = device.id
        self._device = device
        self._context = context
        self._lock = threading.Lock()
        self._executables: list[VulkanExecutable] = []
        context.on_destroy(self._destroy_all)

    def formats(self) -> tuple[str, ...]:
        return (FORMAT,)

    def can_prepare(self, format: str) -> bool:
        return format == FORMAT

    def prepare(self, format: str, payload: bytes | memoryview,
                entry_points: Sequence[Any]) -> VulkanExecutable:
        if format != FORMAT:
            raise IncompatibleModuleError(
                f"device {self.device_id} cannot prepare executable format {format!r}; it can "
                f"prepare: {FORMAT}; compile with --target-backends=vulkan-spirv")
        self._device._check_open("prepare")
        if not isinstance(payload, (bytes, bytearray, memoryview)):
            raise UsageError(f"spirv payload must be bytes, got {type(payload).__name__}")
        eps = tuple(as_entry_point(ep) for ep in entry_points)
        executable = VulkanExecutable(self._context, payload, eps)
        with self._lock:
            self._executables.append(executable)
        log.debug("prepared spirv executable with %d entry points", len(eps))
        return executable

    def _destroy_all(self) -> None:
        with self._lock:
            executables, self._executables = self._executables, []
        for e in executables:
            e.destroy()
