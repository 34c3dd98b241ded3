"""The register-blocked float32 matmul and conv2d that CPU devices (the lavapipe triple) get:
no shared memory, no barriers, every edge, batch, transpose, padding, stride, dilation and
group case matching the reference on lavapipe under the validation layer."""

from __future__ import annotations

import numpy as np
import pytest
from e2e_support import data
from test_spirv_kernels import GPU_CODEGEN, _check

import hal_core
from hal_core.ir import ops as O
from hal_vulkan.target_env import TRIPLES, parse_target_env, render_target_env

CONTROL_BARRIER = 224


def _has_barrier(spirv: bytes) -> bool:
    words = np.frombuffer(spirv, np.uint32)
    i = 5
    while i < len(words):
        if words[i] & 0xFFFF == CONTROL_BARRIER:
            return True
        i += max(1, int(words[i] >> 16))
    return False


def _assert_blocked(variants) -> None:
    for v in variants:
        assert not any("SharedMemorySize" in f for f in v.features), v.features
        assert not _has_barrier(bytes(v.payload))


def test_lavapipe_triple_is_a_cpu_and_gpu_envs_are_not() -> None:
    assert TRIPLES["lavapipe"].is_cpu
    assert not TRIPLES["ampere"].is_cpu and not TRIPLES["mobile"].is_cpu
    # the device type of an environment as `hal devices dump vulkan --target-env` writes it
    assert parse_target_env("#vk.target_env<v1.3, r(0), [], Mesa:CPU, {}>").is_cpu
    assert not parse_target_env("#vk.target_env<v1.3, r(0), [], NVIDIA:DiscreteGPU, {}>").is_cpu
    assert not parse_target_env("#vk.target_env<v1.3, r(0), [], {}>").is_cpu


def test_device_dump_of_lavapipe_is_a_cpu(vulkan_runner) -> None:
    """lavapipe's own environment, as the device dump writes and the CLI reads it back."""
    from hal_vulkan.driver.instance import Instance
    from hal_vulkan.driver.target_env import device_target_env

    instance = Instance(validation=False)
    try:
        envs = [device_target_env(p) for p in instance.physical_devices
                if p.device_type == "cpu"]
    finally:
        instance.destroy()
    assert envs, "lavapipe reports device type cpu"
    assert all(parse_target_env(render_target_env(e)).is_cpu for e in envs)


@pytest.mark.parametrize("sa,sb,ta,tb", [  # stored shapes
    ((130, 33), (33, 70), False, False),     # edges in every dim
    ((128, 64), (64, 256), False, False),    # whole blocks
    ((2, 96, 40), (40, 80), False, False),   # batch, rhs broadcast
    ((3, 1, 20, 24), (2, 9, 24), False, True),  # two batch dims, lhs broadcast, rhs transposed
    ((40, 96), (80, 40), True, True),        # both transposed
    ((7, 5), (7, 300), True, False),         # few rows
    ((1, 2048), (2048, 1000), False, False),  # a fully connected layer
])
def test_blocked_matmul(sa, sb, ta, tb, vulkan_runner, spirv_val) -> None:
    a, b = data(sa, seed=1), data(sb, seed=2)
    kk = sa[-2] if ta else sa[-1]
    # float32 sums of K products of values up to 3 in magnitude: rounding grows with K
    variants = _check(lambda x, y: O.relu(O.matmul(x, y, ta, tb)), (a, b), vulkan_runner,
                      spirv_val, atol=1e-4 * max(1, kk // 128))
    _assert_blocked(variants)


@pytest.mark.parametrize("xs,ws,kwargs", [
    ((2, 16, 20, 20), (64, 16, 3, 3), {"padding": 1}),
    ((1, 8, 33, 31), (96, 4, 3, 2), {"groups": 2, "strides": (2, 1), "dilations": (1, 2),
                                     "padding": (1, 0, 2, 1)}),
    ((1, 64, 14, 14), (256, 64, 1, 1), {}),                     # 1x1: no bounds checks
    ((1, 32, 15, 15), (48, 32, 1, 1), {"strides": 2}),          # strided 1x1
    ((1, 3, 31, 29), (24, 3, 7, 7), {"strides": 2, "padding": 3}),  # a stem
    ((1, 24, 10, 10), (24, 1, 3, 3), {"groups": 24, "padding": 1}),  # depthwise
    ((1, 10, 9, 9), (20, 10, 3, 3), {}),                        # valid 3x3: no bounds checks
])
def test_blocked_conv(xs, ws, kwargs, vulkan_runner, spirv_val) -> None:
    x, w, bias = data(xs, seed=7), data(ws, seed=8), data((ws[0],), seed=9)
    variants = _check(lambda a, b, c: O.relu(O.conv2d(a, b, c, **kwargs)), (x, w, bias),
                      vulkan_runner, spirv_val)
    _assert_blocked(variants)


def test_gpu_envs_keep_the_shared_memory_tiles() -> None:
    a, b = data((130, 33), seed=1), data((33, 70), seed=2)
    from test_spirv_kernels import _module

    for options in (GPU_CODEGEN, {"target-triple": "ampere"}):
        m = hal_core.compile(_module(O.matmul, a, b), target_backends=("vulkan-spirv",),
                             target_options={"vulkan-spirv": options})
        v = m.executables[0].variants[0]
        assert any("SharedMemorySize" in f for f in v.features)
        assert _has_barrier(bytes(v.payload))
