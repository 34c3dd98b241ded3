"""A module holding a spirv variant runs on the vulkan device through the runtime."""

from __future__ import annotations

import numpy as np
import pytest
from vk_kernels import ENTRY_POINTS

from hal_core.errors import IncompatibleModuleError
from hal_core.module.model import (
    Barrier,
    BufferRef,
    Copy,
    Dispatch,
    Executable,
    Function,
    Module,
    Slot,
    TensorType,
    Variant,
    VariantEntryPoint,
)
from hal_core.runtime.loaded import load_module

N = 1000


def f32_bits(x):
    return int(np.array([x], np.float32).view(np.uint32)[0])


def module(payload, features=("vulkan:api>=1.1",)):
    eps = tuple(VariantEntryPoint(e.name, ((N + 63) // 64, 1, 1), e.workgroup_size,
                                  e.binding_count, e.constant_count) for e in ENTRY_POINTS)
    variants = (
        Variant("vulkan-spirv", "spirv", ("vulkan:api>=9.9",), eps, payload),  # never fits
        Variant("vulkan-spirv", "spirv", features, eps, payload),
    )
    t = TensorType((N,), "float32")
    size = 4 * N
    program = (
        Dispatch(0, 0, (BufferRef(Slot.INPUT, 0, 0, size), BufferRef(Slot.INPUT, 1, 0, size),
                        BufferRef(Slot.TRANSIENT, 0, 0, size)), (N, f32_bits(2.0))),
        Barrier(),
        Copy(BufferRef(Slot.TRANSIENT, 0, 0, size), BufferRef(Slot.OUTPUT, 0, 0, size)),
        Copy(BufferRef(Slot.INPUT, 0, 0, size), BufferRef(Slot.OUTPUT, 1, 0, size)),
    )
    fn = Function("axpy2", (t, t), (t, t), program, transient_size=size)
    return Module("vk_test", (fn,), (Executable("k", variants),))


def test_module_runs_on_vulkan(device, spirv_payload):
    loaded = load_module(module(spirv_payload), device)
    try:
        rng = np.random.default_rng(3)
        for _ in range(3):  # reused command buffer, fresh outputs each call
            x, y = rng.random(N, np.float32), rng.random(N, np.float32)
            r, xc = loaded.axpy2(x, y) if hasattr(loaded, "axpy2") else loaded["axpy2"](x, y)
            np.testing.assert_array_equal(r, x * np.float32(2) + y)
            np.testing.assert_array_equal(xc, x)
    finally:
        loaded.close()


def test_module_needing_what_the_device_lacks_is_refused(device, spirv_payload):
    with pytest.raises(IncompatibleModuleError, match="spirv"):
        load_module(module(spirv_payload, ("vulkan:ext:VK_NOPE_missing",)), device)
