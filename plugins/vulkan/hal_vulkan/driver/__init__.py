"""The vulkan HAL driver (imports ``vulkan`` only when its modules are used)."""
