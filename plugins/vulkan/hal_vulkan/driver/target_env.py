"""A physical device's target environment in ``#vk.target_env<...>`` syntax.

The text the ``vulkan-spirv`` target takes as ``--vulkan-target-env``: version, revision,
the device extensions codegen cares about, and the limits/features it must respect. The
driver gathers the facts (:mod:`hal_vulkan.driver.properties`); rendering is the target's
(:func:`hal_vulkan.target_env.render_target_env`, so the text is what its parser reads), with
a local renderer of the same syntax for a distribution built without the target.
"""

from __future__ import annotations

from typing import Any

#: Device extensions that change what SPIR-V the target may emit.
RELEVANT_EXTENSIONS = (
    "VK_KHR_16bit_storage",
    "VK_KHR_8bit_storage",
    "VK_KHR_buffer_device_address",
    "VK_KHR_cooperative_matrix",
    "VK_KHR_shader_float16_int8",
    "VK_KHR_shader_integer_dot_product",
    "VK_KHR_spirv_1_4",
    "VK_KHR_storage_buffer_storage_class",
    "VK_KHR_variable_pointers",
    "VK_EXT_subgroup_size_control",
    "VK_NV_cooperative_matrix",
)
#: Boolean features rendered as ``name = 1 : i32`` when the device has them.
RELEVANT_FEATURES = (
    "shaderFloat64", "shaderInt64", "shaderInt16", "shaderFloat16", "shaderInt8",
    "storageBuffer16BitAccess", "storageBuffer8BitAccess", "subgroupSizeControl",
    "computeFullSubgroups", "vulkanMemoryModel",
)


_VENDORS = {0x10DE: "NVIDIA", 0x1002: "AMD", 0x8086: "Intel", 0x13B5: "ARM",
            0x5143: "Qualcomm", 0x10005: "Mesa"}
_TYPES = {"discrete-gpu": "DiscreteGPU", "integrated-gpu": "IntegratedGPU",
          "virtual-gpu": "VirtualGPU", "cpu": "CPU", "other": "Unknown"}


def device_target_env(device: Any) -> Any:
    """The target's ``TargetEnv`` of a PhysicalDevice (needs the vulkan-spirv target)."""
    from hal_vulkan.target_env import DEFAULT_LIMITS, FEATURES, TargetEnv

    limits = {}
    for name in DEFAULT_LIMITS:
        if name == "subgroupSize":
            limits[name] = device.subgroup_size or DEFAULT_LIMITS[name]
        elif name == "subgroupFeatures":
            limits[name] = device.subgroup_operations or DEFAULT_LIMITS[name]
        elif name in device.limits:
            value = device.limits[name]
            limits[name] = tuple(value) if isinstance(value, list) else value
    v = device.api_version
    return TargetEnv(
        version=(v >> 22 & 0x7F, v >> 12 & 0x3FF), revision=v & 0xFFF,
        extensions=_extensions(device), limits=tuple(sorted(limits.items())),
        features=frozenset(f for f in FEATURES if device.features.get(f)),
        vendor=f"{_VENDORS.get(device.vendor_id, 'Unknown')}:"
               f"{_TYPES.get(device.device_type, 'Unknown')}")


def _extensions(device: Any) -> tuple[str, ...]:
    exts = [e for e in RELEVANT_EXTENSIONS if e in device.extensions]
    # Core promotions: a 1.1 device has storage_buffer_storage_class, a 1.2 one spirv_1_4.
    minor = device.api_version >> 12 & 0x3FF
    if minor >= 1 and "VK_KHR_storage_buffer_storage_class" not in exts:
        exts.append("VK_KHR_storage_buffer_storage_class")
    if minor >= 2 and "VK_KHR_spirv_1_4" not in exts:
        exts.append("VK_KHR_spirv_1_4")
    return tuple(sorted(exts))


def render_target_env(device: Any) -> str:
    try:
        from hal_vulkan.target_env import render_target_env as render
    except ImportError:
        return _render_locally(device)
    return render(device_target_env(device))


def _render_locally(device: Any) -> str:
    v = device.api_version
    limits = device.limits
    exts = _extensions(device)
    minor = v >> 12 & 0x3FF
    size = limits["maxComputeWorkGroupSize"]
    count = limits["maxComputeWorkGroupCount"]
    caps = [
        f"maxComputeSharedMemorySize = {limits['maxComputeSharedMemorySize']} : i32",
        f"maxComputeWorkGroupInvocations = {limits['maxComputeWorkGroupInvocations']} : i32",
        f"maxComputeWorkGroupSize = dense<[{size[0]}, {size[1]}, {size[2]}]> : vector<3xi32>",
        f"maxComputeWorkGroupCount = dense<[{count[0]}, {count[1]}, {count[2]}]> : vector<3xi32>",
        f"maxStorageBufferRange = {limits['maxStorageBufferRange']} : i64",
        f"subgroupFeatures = {device.subgroup_operations} : i32",
        f"subgroupSize = {device.subgroup_size} : i32",
    ]
    if device.min_subgroup_size:
        caps.append(f"minSubgroupSize = {device.min_subgroup_size} : i32")
        caps.append(f"maxSubgroupSize = {device.max_subgroup_size} : i32")
    caps += [f"{name} = 1 : i32" for name in RELEVANT_FEATURES if device.features.get(name)]
    return (f"#vk.target_env<v{v >> 22 & 0x7F}.{minor}, r({v & 0xFFF}), "
            f"[{', '.join(exts)}], {{{', '.join(caps)}}}>")
