"""Random generic kernels (the vmvx fuzz test's generator: transposed, reversed, strided,
offset and broadcast maps, reductions, zero-size dims) compiled to SPIR-V, validated, and run on
lavapipe against kernel IR's definition evaluated point by point."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent.parent / "vmvx"))
from test_generic_fuzz import kernels, reference  # noqa: E402

from hal_core.compiler import kernel_ir as K  # noqa: E402
from hal_vulkan.target import compile_executable  # noqa: E402
from hal_vulkan.target_env import TRIPLES  # noqa: E402


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kernel=kernels(), seed=st.integers(0, 2**31))
def test_random_generic_kernels_on_lavapipe(spirv_val, vulkan_runner, kernel, seed) -> None:
    K.validate(kernel)
    variant = compile_executable(K.KernelExecutable("fuzz", (kernel,)), TRIPLES["lavapipe"])
    spirv_val(bytes(variant.payload))
    rng = np.random.default_rng(seed)
    arrays = {m.operand.binding: rng.integers(-9, 9, m.operand.shape).astype(np.int64)
              for m in kernel.inputs}
    out = kernel.outputs[0].operand
    fill = np.full(out.byte_size, 0xAB, np.uint8)
    contents = [arrays[b].reshape(-1).view(np.uint8) for b in range(len(arrays))] + [fill]
    vulkan_runner.messages.clear()
    got = vulkan_runner.run_bindings(bytes(variant.payload), variant.entry_points[0], contents)
    assert not vulkan_runner.messages, "\n".join(vulkan_runner.messages)
    want = fill.copy().view(np.int64).reshape(out.shape)
    reference(kernel, arrays, {out.binding: want})
    np.testing.assert_array_equal(got[-1].view(np.int64).reshape(out.shape), want)
