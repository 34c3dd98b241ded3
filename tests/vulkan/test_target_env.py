"""The target environment's text form, named triples and the CLI flags that select them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hal_core.errors import CompileError
from hal_vulkan.target_env import (
    TRIPLES, parse_target_env, render_target_env, target_env_from_options,
)

SEED = ("#vk.target_env<v1.1, r(120), [VK_KHR_spirv_1_4, VK_KHR_storage_buffer_storage_class], "
        "{maxComputeSharedMemorySize = 16384 : i32, maxComputeWorkGroupInvocations = 1024: i32, "
        "maxComputeWorkGroupSize = dense<[128, 8, 4]>: vector<3xi32>, subgroupFeatures = 7: i32, "
        "subgroupSize = 64 : i32}>")


def test_seed_text_parses() -> None:
    env = parse_target_env(SEED)
    assert env.version == (1, 1) and env.revision == 120
    assert env.extensions == ("VK_KHR_spirv_1_4", "VK_KHR_storage_buffer_storage_class")
    assert env.limit("maxComputeSharedMemorySize") == 16384
    assert env.limit("maxComputeWorkGroupSize") == (128, 8, 4)
    assert env.limit("subgroupSize") == 64
    assert env.limit("maxComputeWorkGroupCount") == (65535, 65535, 65535)  # default
    assert env.spirv_version == (1, 3)


@pytest.mark.parametrize("name", sorted(TRIPLES))
def test_render_round_trips(name: str) -> None:
    env = TRIPLES[name]
    assert parse_target_env(render_target_env(env)) == env
    assert parse_target_env(render_target_env(parse_target_env(SEED))) == parse_target_env(SEED)


def test_features_parse() -> None:
    env = parse_target_env("#vk.target_env<v1.2, r(0), [], NVIDIA:DiscreteGPU, "
                           "{shaderInt64 = true, shaderFloat64 = false}>")
    assert env.has("shaderInt64") and not env.has("shaderFloat64")
    assert env.vendor == "NVIDIA:DiscreteGPU" and env.spirv_version == (1, 5)


@pytest.mark.parametrize("text,column,expected,found", [
    ("#vk.target_env<1.1, r(1), [], {}>", 16, "a version such as v1.1", "1.1"),
    ("#vk.target_env<v1.1 r(1), [], {}>", 20, "',' after the version", "r(1)"),
    ("#vk.target_env<v1.1, r(1), [VK_A], {maxFoo = 1}>", 37, "a known limit", "maxFoo"),
    ("#vk.target_env<v1.1, r(1), [], {subgroupSize = x}>", 47, "an integer for subgroupSize",
     "x}>"),
    ("#vk.target_env<v1.1, r(1), [], {maxComputeWorkGroupSize = dense<[1, 2]>}>", 0,
     "3 values", ""),
    ("#vk.target_env<v1.1, r(1), [], {}", 0, "'>' closing", "end of text"),
    ("vk.target_env<v1.1>", 1, "'#vk.target_env<'", "vk.target_env"),
])
def test_parse_errors_name_position_expected_found(text, column, expected, found) -> None:
    with pytest.raises(CompileError) as info:
        parse_target_env(text)
    msg = str(info.value)
    assert expected in msg and found in msg
    if column:
        assert f"column {column}" in msg


def test_driver_dump_syntax_parses() -> None:
    """What ``hal devices dump vulkan --target-env`` prints is accepted back."""
    text = ("#vk.target_env<v1.3, r(230), [VK_EXT_subgroup_size_control, VK_KHR_spirv_1_4], "
            "{maxComputeSharedMemorySize = 32768 : i32, "
            "maxComputeWorkGroupInvocations = 1024 : i32, "
            "maxComputeWorkGroupSize = dense<[1024, 1024, 1024]> : vector<3xi32>, "
            "maxComputeWorkGroupCount = dense<[65535, 65535, 65535]> : vector<3xi32>, "
            "maxStorageBufferRange = 134217728 : i64, subgroupFeatures = 127 : i32, "
            "subgroupSize = 8 : i32, minSubgroupSize = 4 : i32, maxSubgroupSize = 8 : i32, "
            "shaderFloat64 = 1 : i32, shaderInt64 = 1 : i32, shaderInt16 = 0 : i32}>")
    env = parse_target_env(text)
    assert env.has("shaderFloat64") and env.has("shaderInt64") and not env.has("shaderInt16")
    assert env.limit("maxStorageBufferRange") == 1 << 27 and env.spirv_version == (1, 6)


def test_old_version_refused() -> None:
    with pytest.raises(CompileError, match="v1.0 is too old"):
        parse_target_env("#vk.target_env<v1.0, r(0), [], {}>")


def test_triples_and_aliases() -> None:
    for name in ("lavapipe", "ampere", "hopper", "mobile", "ampere-unknown-linux"):
        assert target_env_from_options(name, None).version >= (1, 1)
    assert target_env_from_options(None, None) == TRIPLES["lavapipe"]
    assert target_env_from_options("mobile", None).limit("maxComputeWorkGroupInvocations") == 128
    with pytest.raises(CompileError, match="unknown triple 'pascal'"):
        target_env_from_options("pascal", None)


def test_cli_accepts_iree_flag_spelling(tmp_path) -> None:
    from hal_core.ir import Builder, print_module
    from hal_core.ir import ops as O
    b = Builder()
    with b.function("main", [("a", (4,), "float32")]) as f:
        f.ret(O.exp(f.args[0]))
    src = tmp_path / "m.mlir"
    src.write_text(print_module(b.module()))
    out = tmp_path / "m.halm"
    r = subprocess.run([sys.executable, "-m", "hal_core.cli", "compile", str(src),
                        "--target-backends=vulkan-spirv", "--vulkan-target-triple=mobile",
                        f"--vulkan-target-env={SEED}", "-o", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    from hal_core.module.reader import load_module_file
    module = load_module_file(out)
    features = module.executables[0].variants[0].features
    assert "vulkan:limit:maxComputeWorkGroupInvocations>=64" in features
    r = subprocess.run([sys.executable, "-m", "hal_core.cli", "compile", str(src),
                        "--target-backends=vulkan-spirv", "--vulkan-target-env=#vk.bad",
                        "-o", str(out)], capture_output=True, text=True)
    assert r.returncode != 0 and "--vulkan-target-env: at column 1" in r.stderr
