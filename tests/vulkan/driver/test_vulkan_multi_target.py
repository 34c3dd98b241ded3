"""One module compiled for llvm-cpu and vulkan-spirv runs on local-task and on vulkan, each
device picking the variant it can run (issue 8, section 3)."""

from __future__ import annotations

import numpy as np

import hal_core
from hal_core.ir import Builder
from hal_core.runtime.loaded import load_module


def _program():
    b = Builder()
    with b.function("main", [("x", (8, 16), "float32"), ("w", (16, 4), "float32"),
                             ("bias", (4,), "float32")]) as f:
        x, w, bias = f.args
        f.ret(((x @ w) + bias).relu().softmax(axis=1), (x * 2.0).sum(axis=1))
    return b.module()


def test_llvm_cpu_and_spirv_variants_in_one_module(driver):
    module = hal_core.compile(_program(), target_backends=["llvm-cpu", "vulkan-spirv"])
    for exe in module.executables:
        formats = [v.format for v in exe.variants]
        assert any(f.startswith("llvm-object-") for f in formats) and "spirv" in formats, formats
    g = np.random.default_rng(3)
    x = g.standard_normal((8, 16)).astype(np.float32)
    w = g.standard_normal((16, 4)).astype(np.float32)
    bias = g.standard_normal(4).astype(np.float32)
    logits = np.maximum(x @ w + bias, 0)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected = (e / e.sum(axis=1, keepdims=True), (x * 2).sum(axis=1))
    vk = driver.create_device()
    try:
        for device, prefix in ((vk, "spirv"), ("local-task", "llvm-object-")):
            loaded = load_module(module, device)
            try:
                assert all(v.format.startswith(prefix) for v in loaded.variants), \
                    [v.format for v in loaded.variants]
                got = loaded.main(x, w, bias)
                for g_, e_ in zip(got, expected):
                    np.testing.assert_allclose(g_, e_, rtol=1e-5, atol=1e-6)
            finally:
                loaded.close()
    finally:
        vk.close()
