"""The ``vulkan`` HAL driver: runs ``spirv`` executables on Vulkan devices (imports ``vulkan``
only when its modules are used; registration in :mod:`hal_vulkan.plugin` is light).

Reading order: :mod:`~hal_vulkan.driver.instance` (loader, probe, validation layer),
:mod:`~hal_vulkan.driver.properties` (what a physical device is),
:mod:`~hal_vulkan.driver.requirements` (``Device.check_variant``),
:mod:`~hal_vulkan.driver.device` (driver, device, queue operations),
:mod:`~hal_vulkan.driver.context` (VkDevice, queue, completion tracking),
:mod:`~hal_vulkan.driver.memory` (allocator, buffers),
:mod:`~hal_vulkan.driver.command_buffer` (recording, binding tables),
:mod:`~hal_vulkan.driver.executable` (SPIR-V pipelines),
:mod:`~hal_vulkan.driver.target_env` (``hal devices dump vulkan --target-env``).

Device URIs: ``vulkan://`` (default: discrete GPU first), ``vulkan://<index>``,
``vulkan://<uuid>`` (``GPU-`` prefix accepted); parameters ``sync=timeline|fence`` and
``memory=device-only`` (buffers get no host-visible memory, as on a GPU without a BAR window).

Environment: ``HAL_VULKAN_VALIDATION=1`` turns on the Khronos validation layer, whose errors
fail the submissions and the device's ``close()``; the loader's ``VK_DRIVER_FILES`` picks the
ICD (on the NVIDIA machines: ``/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json``).
"""
