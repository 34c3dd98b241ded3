"""hal's Vulkan plugin: the ``vulkan-spirv`` target backend and the ``vulkan`` driver."""
