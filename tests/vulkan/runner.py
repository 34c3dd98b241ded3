"""A minimal standalone Vulkan runner for the vulkan-spirv target's tests (not the driver).

Runs a compiled hal module's host program on the first Vulkan device (lavapipe here) with the
Khronos validation layer on: one host-visible buffer per buffer slot, one submission per
dispatch (so barriers hold trivially), copies and fills done on the mapped memory between
submissions. Validation messages are collected and fail the test that caused them.
"""

from __future__ import annotations

import numpy as np
import vulkan as vk

from hal_core.module import model as M

VALIDATION_LAYER = "VK_LAYER_KHRONOS_validation"
#: Device extensions the target's variants may require (enabled when the device has them).
DEVICE_EXTENSIONS = ("VK_KHR_shader_float_controls",)


class Runner:
    def __init__(self, validation: bool = True) -> None:
        self.messages: list[str] = []
        layers = [VALIDATION_LAYER] if validation and VALIDATION_LAYER in {
            p.layerName for p in vk.vkEnumerateInstanceLayerProperties()} else []
        self.validation = bool(layers)
        app = vk.VkApplicationInfo(pApplicationName="hal-spirv-tests",
                                   apiVersion=vk.VK_MAKE_VERSION(1, 1, 0))
        exts = ["VK_EXT_debug_utils"] if layers else []
        self.instance = vk.vkCreateInstance(vk.VkInstanceCreateInfo(
            pApplicationInfo=app, enabledLayerCount=len(layers), ppEnabledLayerNames=layers,
            enabledExtensionCount=len(exts), ppEnabledExtensionNames=exts), None)
        if layers:
            create = vk.vkGetInstanceProcAddr(self.instance, "vkCreateDebugUtilsMessengerEXT")
            self._messenger_info = vk.VkDebugUtilsMessengerCreateInfoEXT(
                messageSeverity=vk.VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT
                | vk.VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
                messageType=vk.VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT,
                pfnUserCallback=self._on_message)
            self._messenger = create(self.instance, self._messenger_info, None)
        self.physical = vk.vkEnumeratePhysicalDevices(self.instance)[0]
        self.props = vk.vkGetPhysicalDeviceProperties(self.physical)
        families = vk.vkGetPhysicalDeviceQueueFamilyProperties(self.physical)
        self.family = next(i for i, f in enumerate(families)
                           if f.queueFlags & vk.VK_QUEUE_COMPUTE_BIT)
        queue_info = vk.VkDeviceQueueCreateInfo(queueFamilyIndex=self.family, queueCount=1,
                                                pQueuePriorities=[1.0])
        feats = vk.vkGetPhysicalDeviceFeatures(self.physical)
        enabled = vk.VkPhysicalDeviceFeatures(shaderInt64=feats.shaderInt64,
                                              shaderFloat64=feats.shaderFloat64)
        available = {e.extensionName for e in
                     vk.vkEnumerateDeviceExtensionProperties(self.physical, None)}
        exts = [e for e in DEVICE_EXTENSIONS if e in available]
        self.device = vk.vkCreateDevice(self.physical, vk.VkDeviceCreateInfo(
            queueCreateInfoCount=1, pQueueCreateInfos=[queue_info], pEnabledFeatures=enabled,
            enabledExtensionCount=len(exts), ppEnabledExtensionNames=exts), None)
        self.queue = vk.vkGetDeviceQueue(self.device, self.family, 0)
        mem = vk.vkGetPhysicalDeviceMemoryProperties(self.physical)
        want = vk.VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | vk.VK_MEMORY_PROPERTY_HOST_COHERENT_BIT
        self.memory_type = next(i for i in range(mem.memoryTypeCount)
                                if mem.memoryTypes[i].propertyFlags & want == want)
        self.pool = vk.vkCreateCommandPool(self.device, vk.VkCommandPoolCreateInfo(
            queueFamilyIndex=self.family,
            flags=vk.VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT), None)
        self.fence = vk.vkCreateFence(self.device, vk.VkFenceCreateInfo(), None)

    def _on_message(self, severity, types, data, user) -> int:
        self.messages.append(vk.ffi.string(data.pMessage).decode())
        return 0

    # ----- buffers

    def buffer(self, size: int) -> tuple:
        size = max(16, -(-size // 16) * 16)
        buf = vk.vkCreateBuffer(self.device, vk.VkBufferCreateInfo(
            size=size, usage=vk.VK_BUFFER_USAGE_STORAGE_BUFFER_BIT,
            sharingMode=vk.VK_SHARING_MODE_EXCLUSIVE), None)
        req = vk.vkGetBufferMemoryRequirements(self.device, buf)
        mem = vk.vkAllocateMemory(self.device, vk.VkMemoryAllocateInfo(
            allocationSize=req.size, memoryTypeIndex=self.memory_type), None)
        vk.vkBindBufferMemory(self.device, buf, mem, 0)
        mapped = vk.vkMapMemory(self.device, mem, 0, size, 0)
        view = np.frombuffer(mapped, dtype=np.uint8, count=size)
        return buf, mem, view

    def free(self, buf: tuple) -> None:
        vk.vkUnmapMemory(self.device, buf[1])
        vk.vkDestroyBuffer(self.device, buf[0], None)
        vk.vkFreeMemory(self.device, buf[1], None)

    # ----- one dispatch

    def dispatch(self, spirv: bytes, entry: M.VariantEntryPoint,
                 bindings: list[tuple[object, int, int]]) -> None:
        """Run ``entry`` of ``spirv`` once; bindings are (VkBuffer, offset, range)."""
        d = self.device
        shader = vk.vkCreateShaderModule(d, vk.VkShaderModuleCreateInfo(
            codeSize=len(spirv), pCode=spirv), None)
        layout_bindings = [vk.VkDescriptorSetLayoutBinding(
            binding=i, descriptorType=vk.VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, descriptorCount=1,
            stageFlags=vk.VK_SHADER_STAGE_COMPUTE_BIT) for i in range(len(bindings))]
        set_layout = vk.vkCreateDescriptorSetLayout(d, vk.VkDescriptorSetLayoutCreateInfo(
            bindingCount=len(layout_bindings), pBindings=layout_bindings or None), None)
        pipe_layout = vk.vkCreatePipelineLayout(d, vk.VkPipelineLayoutCreateInfo(
            setLayoutCount=1, pSetLayouts=[set_layout]), None)
        name = entry.name
        stage = vk.VkPipelineShaderStageCreateInfo(
            stage=vk.VK_SHADER_STAGE_COMPUTE_BIT, module=shader, pName=name)
        pipeline = vk.vkCreateComputePipelines(d, None, 1, [vk.VkComputePipelineCreateInfo(
            stage=stage, layout=pipe_layout)], None)[0]
        pool = vk.vkCreateDescriptorPool(d, vk.VkDescriptorPoolCreateInfo(
            maxSets=1, poolSizeCount=1, pPoolSizes=[vk.VkDescriptorPoolSize(
                type=vk.VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                descriptorCount=max(1, len(bindings)))]), None)
        dset = vk.vkAllocateDescriptorSets(d, vk.VkDescriptorSetAllocateInfo(
            descriptorPool=pool, descriptorSetCount=1, pSetLayouts=[set_layout]))[0]
        infos = [vk.VkDescriptorBufferInfo(buffer=b, offset=o, range=r) for b, o, r in bindings]
        writes = [vk.VkWriteDescriptorSet(
            dstSet=dset, dstBinding=i, descriptorCount=1,
            descriptorType=vk.VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, pBufferInfo=[info])
            for i, info in enumerate(infos)]
        if writes:
            vk.vkUpdateDescriptorSets(d, len(writes), writes, 0, None)
        cmd = vk.vkAllocateCommandBuffers(d, vk.VkCommandBufferAllocateInfo(
            commandPool=self.pool, level=vk.VK_COMMAND_BUFFER_LEVEL_PRIMARY,
            commandBufferCount=1))[0]
        vk.vkBeginCommandBuffer(cmd, vk.VkCommandBufferBeginInfo(
            flags=vk.VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT))
        vk.vkCmdBindPipeline(cmd, vk.VK_PIPELINE_BIND_POINT_COMPUTE, pipeline)
        vk.vkCmdBindDescriptorSets(cmd, vk.VK_PIPELINE_BIND_POINT_COMPUTE, pipe_layout, 0, 1,
                                   [dset], 0, None)
        vk.vkCmdDispatch(cmd, *entry.workgroup_count)
        vk.vkEndCommandBuffer(cmd)
        vk.vkQueueSubmit(self.queue, 1, [vk.VkSubmitInfo(commandBufferCount=1,
                                                         pCommandBuffers=[cmd])], self.fence)
        vk.vkWaitForFences(d, 1, [self.fence], vk.VK_TRUE, 60 * 10**9)
        vk.vkResetFences(d, 1, [self.fence])
        vk.vkFreeCommandBuffers(d, self.pool, 1, [cmd])
        vk.vkDestroyDescriptorPool(d, pool, None)
        vk.vkDestroyPipeline(d, pipeline, None)
        vk.vkDestroyPipelineLayout(d, pipe_layout, None)
        vk.vkDestroyDescriptorSetLayout(d, set_layout, None)
        vk.vkDestroyShaderModule(d, shader, None)

    def run_bindings(self, spirv: bytes, entry: M.VariantEntryPoint,
                     contents: list[np.ndarray]) -> list[np.ndarray]:
        """Dispatch ``entry`` once over bindings holding ``contents`` (bytes); return them after."""
        bufs = [self.buffer(c.nbytes) for c in contents]
        try:
            for buf, c in zip(bufs, contents):
                buf[2][:c.nbytes] = c.view(np.uint8).reshape(-1)
            self.dispatch(spirv, entry, [(b[0], 0, len(b[2])) for b in bufs])
            return [b[2][:c.nbytes].copy() for b, c in zip(bufs, contents)]
        finally:
            for b in bufs:
                self.free(b)

    # ----- a whole function of a module

    def run(self, module: M.Module, inputs: list[np.ndarray],
            function: int = 0) -> list[np.ndarray]:
        fn = module.functions[function]
        slots: dict[tuple[int, int], tuple] = {}

        def slot(ref: M.BufferRef) -> tuple:
            key = (int(ref.slot), ref.index)
            if key not in slots:
                if ref.slot == M.Slot.INPUT:
                    data = np.ascontiguousarray(inputs[ref.index]).view(np.uint8).reshape(-1)
                elif ref.slot == M.Slot.CONSTANT:
                    data = np.frombuffer(module.constants[ref.index].contents(), np.uint8)
                elif ref.slot == M.Slot.OUTPUT:
                    data = np.zeros(fn.outputs[ref.index].byte_size, np.uint8)
                else:
                    data = np.zeros(fn.transient_size, np.uint8)
                slots[key] = self.buffer(len(data))
                slots[key][2][:len(data)] = data
            return slots[key]

        for o in range(len(fn.outputs)):
            slot(M.BufferRef(M.Slot.OUTPUT, o, 0, 0))
        try:
            for op in fn.program:
                if isinstance(op, M.Dispatch):
                    variant = next(v for v in module.executables[op.executable].variants
                                   if v.format == "spirv")
                    binds = []
                    for ref in op.bindings:
                        buf = slot(ref)
                        size = len(buf[2])
                        binds.append((buf[0], ref.offset,
                                      max(4, min(-(-ref.length // 4) * 4, size - ref.offset))))
                    self.dispatch(bytes(variant.payload), variant.entry_points[op.entry_point],
                                  binds)
                elif isinstance(op, M.Copy):
                    src = slot(op.source)[2][op.source.offset:op.source.offset + op.source.length]
                    slot(op.target)[2][op.target.offset:op.target.offset + op.target.length] = src
                elif isinstance(op, M.Fill):
                    t = op.target
                    reps = -(-t.length // len(op.pattern))
                    pat = np.frombuffer(op.pattern * reps, np.uint8)[:t.length]
                    slot(t)[2][t.offset:t.offset + t.length] = pat
            results = []
            for i, t in enumerate(fn.outputs):
                raw = slot(M.BufferRef(M.Slot.OUTPUT, i, 0, 0))[2][:t.byte_size].copy()
                results.append(raw.view(np.dtype(t.dtype)).reshape(t.shape))
            return results
        finally:
            for buf in slots.values():
                self.free(buf)

    def close(self) -> None:
        d = self.device
        vk.vkDestroyFence(d, self.fence, None)
        vk.vkDestroyCommandPool(d, self.pool, None)
        vk.vkDestroyDevice(d, None)
        if self.validation:
            destroy = vk.vkGetInstanceProcAddr(self.instance, "vkDestroyDebugUtilsMessengerEXT")
            destroy(self.instance, self._messenger, None)
        vk.vkDestroyInstance(self.instance, None)
