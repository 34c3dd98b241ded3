"""The Vulkan instance: loading the loader, the availability probe, validation, physical devices.

Everything talks to the loader through the ``vulkan`` package's cffi ``lib`` and ``ffi``
directly: its Python wrappers build structs per call (30-60 us) and drop pointer keep-alives of
nested structs passed by value, so structs here are built with ``ffi.new`` and every inner
struct or string is kept in a variable for as long as the call needs it.

Environment:

* ``HAL_VULKAN_VALIDATION=1`` enables the Khronos validation layer; every error it reports is
  logged and recorded on the instance (:attr:`Instance.validation_errors`), and a device whose
  instance recorded errors fails its ``close()`` so that a test using it fails.
* ``VK_DRIVER_FILES`` / ``VK_ICD_FILENAMES`` (the loader's own) pick the ICDs.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from hal_core.errors import DeviceUnavailableError, HalRuntimeError

log = logging.getLogger(__name__)

INSTALL_HINT = "install a Vulkan loader and driver, e.g. apt-get install libvulkan1 mesa-vulkan-drivers"
VALIDATION_LAYER = b"VK_LAYER_KHRONOS_validation"


def load() -> Any:
    """The ``vulkan`` module; DeviceUnavailableError when the package or the loader is missing."""
    try:
        import vulkan
    except OSError:  # the package raises OSError when it cannot dlopen libvulkan.so.1
        raise DeviceUnavailableError("no Vulkan loader (libvulkan.so.1) could be loaded; "
                                     f"{INSTALL_HINT}") from None
    except ImportError as e:
        raise DeviceUnavailableError(f"the 'vulkan' Python package is not installed ({e}); "
                                     f"pip install vulkan") from None
    return vulkan


_RESULT_NAMES: dict[int, str] = {}


def result_name(vk: Any, code: int) -> str:
    if not _RESULT_NAMES:
        for name in dir(vk):
            if name.startswith(("VK_ERROR_", "VK_SUCCESS", "VK_NOT_READY", "VK_TIMEOUT",
                                "VK_INCOMPLETE")):
                value = getattr(vk, name)
                if isinstance(value, int):
                    _RESULT_NAMES.setdefault(value, name)
    return _RESULT_NAMES.get(code, f"VkResult {code}")


def check(vk: Any, code: int, what: str) -> None:
    """Raise HalRuntimeError naming the VkResult when ``code`` is not VK_SUCCESS."""
    if code != 0:
        raise HalRuntimeError(f"{what} failed: {result_name(vk, code)}")


def version_text(v: int) -> str:
    return f"{v >> 22 & 0x7F}.{v >> 12 & 0x3FF}.{v & 0xFFF}"


def make_version(major: int, minor: int, patch: int = 0) -> int:
    return (major << 22) | (minor << 12) | patch


def validation_requested() -> bool:
    return os.environ.get("HAL_VULKAN_VALIDATION", "").strip() not in ("", "0", "false", "no")


class Instance:
    """A VkInstance with its physical devices (created once per driver)."""

    def __init__(self, validation: bool | None = None) -> None:
        vk = self.vk = load()
        ffi, lib = self.ffi, self.lib = vk.ffi, vk.lib
        self.validation = validation_requested() if validation is None else validation
        self.validation_errors: list[str] = []
        self._lock = threading.Lock()
        self._messenger = None
        self._callback = None
        version = ffi.new("uint32_t*")
        try:
            if lib.vkEnumerateInstanceVersion(version) != 0:
                version[0] = make_version(1, 0)
        except AttributeError:  # a Vulkan 1.0 loader does not export it
            version[0] = make_version(1, 0)
        # Ask for at most 1.3: the structs this driver chains are known up to there.
        self.api_version = min(version[0] & ~0xFFF, make_version(1, 3))
        layers, extensions = [], []
        available_ext = self._instance_extensions()
        if self.validation:
            if VALIDATION_LAYER.decode() not in self._instance_layers():
                raise DeviceUnavailableError(
                    "HAL_VULKAN_VALIDATION is set but the Khronos validation layer is not "
                    "installed; apt-get install vulkan-validationlayers (or unset it)")
            layers.append(VALIDATION_LAYER)
            extensions.append(b"VK_EXT_debug_utils")
        if "VK_KHR_portability_enumeration" in available_ext:
            extensions.append(b"VK_KHR_portability_enumeration")
        keep = [ffi.new("char[]", s) for s in layers + extensions]
        layer_ptrs = ffi.new("char*[]", keep[:len(layers)])
        ext_ptrs = ffi.new("char*[]", keep[len(layers):])
        app_name = ffi.new("char[]", b"hal")
        app = ffi.new("VkApplicationInfo*", {
            "sType": vk.VK_STRUCTURE_TYPE_APPLICATION_INFO, "pApplicationName": app_name,
            "pEngineName": app_name, "apiVersion": self.api_version})
        info = ffi.new("VkInstanceCreateInfo*", {
            "sType": vk.VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, "pApplicationInfo": app,
            "enabledLayerCount": len(layers), "ppEnabledLayerNames": layer_ptrs,
            "enabledExtensionCount": len(extensions), "ppEnabledExtensionNames": ext_ptrs,
            "flags": 1 if b"VK_KHR_portability_enumeration" in extensions else 0})
        handle = ffi.new("VkInstance*")
        code = lib.vkCreateInstance(info, ffi.NULL, handle)
        if code == vk.VK_ERROR_INCOMPATIBLE_DRIVER:
            raise DeviceUnavailableError(
                "the Vulkan loader found no driver (VK_ERROR_INCOMPATIBLE_DRIVER at instance "
                f"creation; VK_DRIVER_FILES={os.environ.get('VK_DRIVER_FILES', '(unset)')}); "
                f"{INSTALL_HINT}")
        if code != 0:
            raise DeviceUnavailableError(
                f"vkCreateInstance failed with {result_name(vk, code)}; {INSTALL_HINT}")
        self.handle = handle[0]
        if self.validation:
            self._install_messenger()
        count = ffi.new("uint32_t*")
        check(vk, lib.vkEnumeratePhysicalDevices(self.handle, count, ffi.NULL),
              "vkEnumeratePhysicalDevices")
        devices = ffi.new("VkPhysicalDevice[]", count[0])
        check(vk, lib.vkEnumeratePhysicalDevices(self.handle, count, devices),
              "vkEnumeratePhysicalDevices")
        from hal_vulkan.driver.properties import PhysicalDevice

        self.physical_devices = [PhysicalDevice(self, devices[i], i) for i in range(count[0])]

    def _instance_extensions(self) -> set[str]:
        ffi, lib = self.ffi, self.lib
        count = ffi.new("uint32_t*")
        if lib.vkEnumerateInstanceExtensionProperties(ffi.NULL, count, ffi.NULL) != 0:
            return set()
        props = ffi.new("VkExtensionProperties[]", count[0])
        lib.vkEnumerateInstanceExtensionProperties(ffi.NULL, count, props)
        return {ffi.string(props[i].extensionName).decode() for i in range(count[0])}

    def _instance_layers(self) -> set[str]:
        ffi, lib = self.ffi, self.lib
        count = ffi.new("uint32_t*")
        if lib.vkEnumerateInstanceLayerProperties(count, ffi.NULL) != 0:
            return set()
        props = ffi.new("VkLayerProperties[]", count[0])
        lib.vkEnumerateInstanceLayerProperties(count, props)
        return {ffi.string(props[i].layerName).decode() for i in range(count[0])}

    def _install_messenger(self) -> None:
        vk, ffi, lib = self.vk, self.ffi, self.lib
        errors = self.validation_errors

        def on_message(severity: int, types: int, data: Any, user: Any) -> int:
            text = ffi.string(data.pMessage).decode(errors="replace") if data.pMessage else ""
            if severity & vk.VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT:
                log.error("Vulkan validation: %s", text)
                errors.append(text)
            else:
                log.warning("Vulkan validation: %s", text)
            return 0

        self._callback = ffi.callback("PFN_vkDebugUtilsMessengerCallbackEXT", on_message)
        info = ffi.new("VkDebugUtilsMessengerCreateInfoEXT*", {
            "sType": vk.VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
            "messageSeverity": vk.VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT
            | vk.VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
            "messageType": vk.VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT
            | vk.VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT
            | vk.VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
            "pfnUserCallback": self._callback})
        create = ffi.cast("PFN_vkCreateDebugUtilsMessengerEXT", lib.vkGetInstanceProcAddr(
            self.handle, b"vkCreateDebugUtilsMessengerEXT"))
        handle = ffi.new("VkDebugUtilsMessengerEXT*")
        check(vk, create(self.handle, info, ffi.NULL, handle), "vkCreateDebugUtilsMessengerEXT")
        self._messenger = handle[0]

    def destroy(self) -> None:
        ffi, lib = self.ffi, self.lib
        if self._messenger is not None:
            destroy = ffi.cast("PFN_vkDestroyDebugUtilsMessengerEXT", lib.vkGetInstanceProcAddr(
                self.handle, b"vkDestroyDebugUtilsMessengerEXT"))
            destroy(self.handle, self._messenger, ffi.NULL)
            self._messenger = None
        lib.vkDestroyInstance(self.handle, ffi.NULL)


def probe() -> str | None:
    """None when a Vulkan device can be used here, else why not and what to install."""
    try:
        instance = Instance(validation=False)
    except DeviceUnavailableError as e:
        return str(e)
    try:
        if not instance.physical_devices:
            return f"the Vulkan loader and driver report no physical devices; {INSTALL_HINT}"
        return None
    finally:
        instance.destroy()
