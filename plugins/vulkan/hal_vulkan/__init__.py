"""hal's Vulkan plugin: the ``vulkan`` HAL driver (``hal_vulkan.driver``) and the
``vulkan-spirv`` target backend. Importing this package imports nothing heavy."""
