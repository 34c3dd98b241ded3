"""Named kernels -> SPIR-V."""

from __future__ import annotations

from hal_vulkan.errors import UnsupportedKernelError


def lower_named(k, factory, limit):
    raise UnsupportedKernelError(f"{type(k).__name__} is not lowered yet")
