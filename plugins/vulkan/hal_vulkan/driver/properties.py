"""What a physical device is: version, extensions, features, limits, subgroups, memory.

Gathered once per physical device through the Properties2/Features2 chains. Only the structs
that the lower of the instance's and the device's API versions allows are chained (a 1.3
struct in the chain of a 1.1 device is invalid usage). The answers back ``hal devices dump``,
the ``vulkan://`` URIs, variant requirement checks (:mod:`hal_vulkan.driver.requirements`) and
the target environment text.
"""

from __future__ import annotations

import uuid
from typing import Any

from hal_vulkan.driver.instance import make_version, version_text

DEVICE_TYPES = {0: "other", 1: "integrated-gpu", 2: "discrete-gpu", 3: "virtual-gpu", 4: "cpu"}

_FEATURE_STRUCTS = (  # (struct, sType constant, minimum API version)
    ("VkPhysicalDeviceVulkan11Features", "VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES",
     (1, 2)),
    ("VkPhysicalDeviceVulkan12Features", "VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES",
     (1, 2)),
    ("VkPhysicalDeviceVulkan13Features", "VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES",
     (1, 3)),
)
#: Features left off even when supported: robust access costs speed on GPUs.
NOT_ENABLED = frozenset({"robustBufferAccess", "robustImageAccess"})


def _chain(ffi: Any, structs: list[Any]) -> None:
    for a, b in zip(structs, structs[1:]):
        a.pNext = ffi.cast("void*", b)


def _scalar_fields(ffi: Any, struct: Any, ctype: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, field in ffi.typeof(ctype).fields:
        if name in ("sType", "pNext"):
            continue
        value = getattr(struct, name)
        if field.type.kind == "array":
            out[name] = [int(v) for v in value]
        elif field.type.kind == "primitive":
            out[name] = value
    return out


class PhysicalDevice:
    """One VkPhysicalDevice and everything queried about it."""

    def __init__(self, instance: Any, handle: Any, index: int) -> None:
        vk, ffi, lib = instance.vk, instance.ffi, instance.lib
        self.instance = instance
        self.handle = handle
        self.index = index
        base = ffi.new("VkPhysicalDeviceProperties*")
        lib.vkGetPhysicalDeviceProperties(handle, base)
        self.device_api_version = base.apiVersion
        self.api_version = min(instance.api_version, base.apiVersion)
        self.name = ffi.string(base.deviceName).decode(errors="replace")
        self.device_type = DEVICE_TYPES.get(base.deviceType, "other")
        self.vendor_id, self.device_id = base.vendorID, base.deviceID
        self.driver_version = base.driverVersion
        self.limits = _scalar_fields(ffi, base.limits, "VkPhysicalDeviceLimits")
        api11 = self.api_version >= make_version(1, 1)
        api12 = self.api_version >= make_version(1, 2)
        api13 = self.api_version >= make_version(1, 3)
        self.uuid = ""
        self.subgroup_size = 0
        self.subgroup_operations = 0
        self.min_subgroup_size = self.max_subgroup_size = 0
        self.driver_name = ""
        if api11:
            ids = ffi.new("VkPhysicalDeviceIDProperties*", {
                "sType": vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_ID_PROPERTIES})
            sub = ffi.new("VkPhysicalDeviceSubgroupProperties*", {
                "sType": vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES})
            chain = [ids, sub]
            if api12:
                drv = ffi.new("VkPhysicalDeviceDriverProperties*", {
                    "sType": vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES})
                chain.append(drv)
            if api13:
                p13 = ffi.new("VkPhysicalDeviceVulkan13Properties*", {
                    "sType": vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_PROPERTIES})
                chain.append(p13)
            props2 = ffi.new("VkPhysicalDeviceProperties2*", {
                "sType": vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2})
            _chain(ffi, [props2, *chain])
            lib.vkGetPhysicalDeviceProperties2(handle, props2)
            self.uuid = str(uuid.UUID(bytes=bytes(ids.deviceUUID)))
            self.subgroup_size = sub.subgroupSize
            self.subgroup_operations = sub.supportedOperations
            if api12:
                self.driver_name = ffi.string(drv.driverName).decode(errors="replace")
            if api13:
                self.min_subgroup_size, self.max_subgroup_size = (p13.minSubgroupSize,
                                                                  p13.maxSubgroupSize)
        self._query_features(vk, ffi, lib)
        self.extensions = self._query_extensions(ffi, lib)
        self._query_memory(ffi, lib)
        count = ffi.new("uint32_t*")
        lib.vkGetPhysicalDeviceQueueFamilyProperties(handle, count, ffi.NULL)
        families = ffi.new("VkQueueFamilyProperties[]", count[0])
        lib.vkGetPhysicalDeviceQueueFamilyProperties(handle, count, families)
        self.queue_families = [(families[i].queueFlags, families[i].queueCount,
                                families[i].timestampValidBits) for i in range(count[0])]

    def _query_features(self, vk: Any, ffi: Any, lib: Any) -> None:
        major_minor = (self.api_version >> 22 & 0x7F, self.api_version >> 12 & 0x3FF)
        self.features: dict[str, bool] = {}
        self._feature_structs = []
        if major_minor >= (1, 1):
            f2 = ffi.new("VkPhysicalDeviceFeatures2*", {
                "sType": vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2})
            extra = [(ctype, ffi.new(ctype + "*", {"sType": getattr(vk, stype)}))
                     for ctype, stype, need in _FEATURE_STRUCTS if major_minor >= need]
            _chain(ffi, [f2] + [s for _, s in extra])
            lib.vkGetPhysicalDeviceFeatures2(self.handle, f2)
            base = f2.features
            self._feature_structs = [("VkPhysicalDeviceFeatures2", f2)] + extra
            for ctype, s in extra:
                self.features.update({k: bool(v) for k, v in _scalar_fields(ffi, s, ctype).items()})
        else:
            holder = ffi.new("VkPhysicalDeviceFeatures*")
            lib.vkGetPhysicalDeviceFeatures(self.handle, holder)
            base = holder[0]
            self._feature_structs = [("VkPhysicalDeviceFeatures", holder)]
        self.features.update({k: bool(v) for k, v in
                              _scalar_fields(ffi, base, "VkPhysicalDeviceFeatures").items()})
        self.timeline_semaphores = bool(self.features.get("timelineSemaphore"))

    def enabled_feature_chain(self) -> tuple[Any, list[Any]]:
        """(pNext head or pEnabledFeatures, keep-alive list) enabling every supported feature
        except :data:`NOT_ENABLED`; the first element is the Features2 struct on 1.1+."""
        ffi = self.instance.ffi
        copies = []
        for ctype, s in self._feature_structs:
            c = ffi.new(ctype + "*")
            ffi.memmove(c, s, ffi.sizeof(ctype))
            copies.append((ctype, c))
        for ctype, c in copies:
            target = c.features if ctype == "VkPhysicalDeviceFeatures2" else (
                c[0] if ctype == "VkPhysicalDeviceFeatures" else c)
            for name in NOT_ENABLED:
                if hasattr(target, name):
                    setattr(target, name, 0)
        structs = [c for _, c in copies]
        if copies[0][0] == "VkPhysicalDeviceFeatures2":
            _chain(ffi, structs)
            structs[-1].pNext = ffi.NULL
        return structs[0], structs

    def _query_extensions(self, ffi: Any, lib: Any) -> tuple[str, ...]:
        count = ffi.new("uint32_t*")
        lib.vkEnumerateDeviceExtensionProperties(self.handle, ffi.NULL, count, ffi.NULL)
        props = ffi.new("VkExtensionProperties[]", count[0])
        lib.vkEnumerateDeviceExtensionProperties(self.handle, ffi.NULL, count, props)
        return tuple(sorted(ffi.string(props[i].extensionName).decode() for i in range(count[0])))

    def _query_memory(self, ffi: Any, lib: Any) -> None:
        mem = ffi.new("VkPhysicalDeviceMemoryProperties*")
        lib.vkGetPhysicalDeviceMemoryProperties(self.handle, mem)
        self.memory_types = [(mem.memoryTypes[i].propertyFlags, mem.memoryTypes[i].heapIndex)
                             for i in range(mem.memoryTypeCount)]
        self.memory_heaps = [(mem.memoryHeaps[i].size, mem.memoryHeaps[i].flags)
                             for i in range(mem.memoryHeapCount)]

    # -- derived facts ---------------------------------------------------------------------

    @property
    def uri(self) -> str:
        return f"vulkan://{self.uuid or self.index}"

    def api_text(self) -> str:
        return version_text(self.api_version)

    def compute_queue_family(self) -> int | None:
        """A queue family with compute: a compute-only one first (async compute), else any."""
        compute = [i for i, (flags, n, _) in enumerate(self.queue_families) if flags & 2 and n]
        only = [i for i in compute if not self.queue_families[i][0] & 1]
        return (only or compute or [None])[0]

    def summary(self) -> dict[str, Any]:
        """JSON-serialisable properties for ``hal devices list/dump``."""
        from hal_vulkan.driver.target_env import render_target_env

        return {
            "name": self.name,
            "uuid": self.uuid,
            "index": self.index,
            "device_type": self.device_type,
            "api_version": version_text(self.device_api_version),
            "driver": self.driver_name,
            "driver_version": self.driver_version,
            "vendor_id": f"0x{self.vendor_id:04x}",
            "device_id": f"0x{self.device_id:04x}",
            "subgroup_size": self.subgroup_size,
            "timeline_semaphores": self.timeline_semaphores,
            "memory_heaps": [f"{size >> 20} MiB{' device-local' if flags & 1 else ''}"
                             for size, flags in self.memory_heaps],
            "memory_types": [f"heap {heap}: " + ("|".join(
                name for bit, name in ((1, "device-local"), (2, "host-visible"),
                                       (4, "host-coherent"), (8, "host-cached"))
                if flags & bit) or "none") for flags, heap in self.memory_types],
            "max_compute_shared_memory": self.limits["maxComputeSharedMemorySize"],
            "max_workgroup_invocations": self.limits["maxComputeWorkGroupInvocations"],
            "max_storage_buffer_range": self.limits["maxStorageBufferRange"],
            "target_env": render_target_env(self),
        }
