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
            r, xc = loaded["axpy2"](x, y)
            np.testing.assert_allclose(r, x * np.float32(2) + y, rtol=2.5e-7, atol=0)
            np.testing.assert_array_equal(xc, x)
    finally:
        loaded.close()


def test_module_needing_what_the_device_lacks_is_refused(device, spirv_payload):
    with pytest.raises(IncompatibleModuleError, match="spirv"):
        load_module(module(spirv_payload, ("vulkan:ext:VK_NOPE_missing",)), device)


def mixed_module(spirv_payload, spirv_first):
    """``out[i] = i`` (uint32) with a vmvx variant and a spirv variant of one executable."""
    from hal_core.compiler import kernel_ir as K
    from hal_core.compiler.target import TargetOptions
    from hal_vmvx.target import VmvxTarget

    n = 64 * 6
    out = K.KernelOperand(0, (n,), "uint32")
    kernel = K.GenericKernel("iota", (n,), ("parallel",), (),
                             (K.MappedOperand(out, K.IndexingMap.identity(1)),),
                             (K.ScalarOp("cast", (K.IterIndex(0),), "uint32"),), (K.Result(0),))
    vmvx = VmvxTarget().compile(K.KernelExecutable("iota", (kernel,)), TargetOptions())
    vmvx = vmvx[0] if isinstance(vmvx, list) else vmvx
    spirv = Variant("vulkan-spirv", "spirv", ("vulkan:api>=1.1",),
                    (VariantEntryPoint("iota", (6, 1, 1), (64, 1, 1), 1, 0),), spirv_payload)
    t = TensorType((n,), "uint32")
    fn = Function("iota", (), (t,), (Dispatch(0, 0, (BufferRef(Slot.OUTPUT, 0, 0, 4 * n),)),))
    variants = (spirv, vmvx) if spirv_first else (vmvx, spirv)
    return Module("mixed", (fn,), (Executable("iota", variants),)), n


@pytest.mark.parametrize("spirv_first", [True, False])
def test_module_with_vmvx_and_spirv_variants_runs_on_vulkan_and_local(driver, spirv_payload,
                                                                      spirv_first):
    module, n = mixed_module(spirv_payload, spirv_first)
    for device, fmt in ((driver.create_device(), "spirv"), ("local-sync", "vmvx-bytecode")):
        loaded = load_module(module, device)
        try:
            assert [v.format for v in loaded.variants] == [fmt]
            result = loaded["iota"]()
            result = result[0] if isinstance(result, tuple) else result
            np.testing.assert_array_equal(result, np.arange(n, dtype=np.uint32))
        finally:
            loaded.close()
            if not isinstance(device, str):
                device.close()
