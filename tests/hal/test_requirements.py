"""The requirement vocabulary (parse_requirement) and the local devices' check_variant."""

from __future__ import annotations

import dataclasses

import pytest
from hal_local import cpu

from hal_core.errors import UsageError
from hal_core.hal.requirements import Requirement, normalize_cpu_flags, parse_requirement
from hal_core.module.model import Variant


@pytest.mark.parametrize("text, want", [
    ("cpu:avx512f", Requirement("cpu", "avx512f")),
    ("cpu:sse4.1", Requirement("cpu", "sse4.1")),
    ("avx2", Requirement("cpu", "avx2")),  # legacy: no namespace means cpu
    ("vulkan:api>=1.1", Requirement("vulkan", "api", ">=", "1.1")),
    ("vulkan:ext:VK_KHR_spirv_1_4", Requirement("vulkan", "ext:VK_KHR_spirv_1_4")),
    ("vulkan:feature:shaderInt64", Requirement("vulkan", "feature:shaderInt64")),
    ("vulkan:limit:maxComputeSharedMemorySize>=16384",
     Requirement("vulkan", "limit:maxComputeSharedMemorySize", ">=", "16384")),
    ("vulkan:limit:maxComputeWorkGroupSize>=128x8x4",
     Requirement("vulkan", "limit:maxComputeWorkGroupSize", ">=", "128x8x4")),
    ("vulkan:subgroup-size=32", Requirement("vulkan", "subgroup-size", "=", "32")),
])
def test_parse_requirement(text, want):
    got = parse_requirement(text)
    assert got == want
    assert parse_requirement(str(got)) == got


@pytest.mark.parametrize("text", ["", "cpu:", ":avx2", "vulkan:api>=", "vulkan:api<2", "a=b=c"])
def test_malformed_requirements_are_usage_errors(text):
    with pytest.raises(UsageError, match="requirement"):
        parse_requirement(text)


def test_cpuinfo_flags_are_normalised_to_llvm_names():
    flags = normalize_cpu_flags(["sse4_1", "sse4_2", "pni", "avx2", "asimd", "avx512_vnni"])
    assert {"sse4.1", "sse4.2", "sse3", "avx2", "neon", "avx512vnni"} <= flags
    assert "sse4_1" in flags  # the kernel's spelling still matches legacy requirements


def _variant(*features):
    return Variant("vmvx", "vmvx-bytecode", tuple(features), (), b"")


def test_local_device_checks_cpu_requirements(device):
    assert device.check_variant(_variant()) is None
    reason = device.check_variant(_variant("cpu:no-such-feature"))
    assert reason == "needs cpu:no-such-feature, which this CPU lacks"
    have = sorted(cpu.cpu_features())
    if have:  # /proc/cpuinfo exists here: a feature the CPU has passes, in both spellings
        assert device.check_variant(_variant(f"cpu:{have[0]}", have[0])) is None


def test_local_device_refuses_requirements_it_cannot_check(device):
    reason = device.check_variant(_variant("vulkan:api>=1.1"))
    assert "vulkan:api>=1.1" in reason and "cannot provide" in reason


def test_malformed_requirement_is_a_reason_not_a_crash(device):
    assert "malformed variant requirement" in device.check_variant(_variant("cpu:"))


def test_base_device_checks_cpu_requirements_against_query_features(device):
    from hal_core.hal.device import Device

    class Plain(Device):
        def query_features(self):
            return frozenset({"avx2"})

    plain = Plain(None, "plain://", device.allocator, device.executable_cache)
    assert plain.check_variant(_variant("avx2", "cpu:avx2")) is None
    assert "which device plain:// lacks" in plain.check_variant(_variant("cpu:fma"))
    assert "cannot provide" in plain.check_variant(dataclasses.replace(
        _variant(), features=("vulkan:ext:VK_KHR_16bit_storage",)))
