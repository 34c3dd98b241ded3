"""vulkan-spirv codegen beyond the e2e suite: the tiled matmul, launch shapes within the target
environment's limits (split grids, workgroup sizes, shared memory), declines and requirements."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from e2e_support import data

import hal_core
from hal_core.compiler.kernel_ir import (
    GenericKernel, IndexingMap, Input, KernelExecutable, KernelOperand, MappedOperand,
    MatmulKernel, Result, ScalarOp,
)
from hal_core.errors import CompileError
from hal_core.ir import Builder, evaluate
from hal_core.ir import ops as O
from hal_vulkan.errors import UnsupportedKernelError
from hal_vulkan.target import compile_executable
from hal_vulkan.target_env import TRIPLES, parse_target_env, render_target_env, with_limits

SEED_ENV = ("#vk.target_env<v1.1, r(120), [VK_KHR_spirv_1_4, "
            "VK_KHR_storage_buffer_storage_class], {maxComputeSharedMemorySize = 16384 : i32, "
            "maxComputeWorkGroupInvocations = 1024: i32, maxComputeWorkGroupSize = "
            "dense<[128, 8, 4]>: vector<3xi32>, subgroupFeatures = 7: i32, "
            "subgroupSize = 64 : i32}>")

#: lavapipe's limits without its CPU device type: the GPU codegen (shared-memory tiles), run on
#: lavapipe. The lavapipe triple itself gets the CPU kernels (test_spirv_cpu_gemm.py).
GPU_CODEGEN = {"target-env": render_target_env(replace(TRIPLES["lavapipe"], vendor=None))}


def _uses_vec4_buffers(spirv: bytes) -> bool:
    """Whether a module reads buffers as uvec4 arrays (an ArrayStride 16 decoration)."""
    words = np.frombuffer(spirv, np.uint32)
    return any(words[i] == (4 << 16 | 71) and words[i + 2] == 6 and words[i + 3] == 16
               for i in range(5, len(words) - 3))


def _module(build, *inputs):
    b = Builder()
    with b.function("main", [(f"a{i}", x.shape, x.dtype.name) for i, x in enumerate(inputs)]) as f:
        out = build(*f.args)
        f.ret(*(out if isinstance(out, tuple) else (out,)))
    return b.module()


def _check(build, inputs, runner, spirv_val, options=None, rtol=1e-4, atol=1e-4):
    ir = _module(build, *inputs)
    module = hal_core.compile(ir, target_backends=("vulkan-spirv",),
                              target_options={"vulkan-spirv": options} if options else None)
    variants = [v for ex in module.executables for v in ex.variants]
    for v in variants:
        spirv_val(bytes(v.payload))
    runner.messages.clear()
    got = runner.run(module, list(inputs))
    assert not runner.messages, "\n".join(runner.messages)
    want = evaluate(ir.functions[0], *inputs)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, np.asarray(w), rtol=rtol, atol=atol)
    return variants


@pytest.mark.parametrize("sa,sb,ta,tb", [
    ((130, 33), (33, 70), False, False),     # edges in every dim
    ((128, 64), (64, 256), False, False),    # whole tiles
    ((2, 96, 40), (40, 80), False, False),   # batch, rhs broadcast
    ((40, 96), (80, 40), True, True),        # both transposed
    ((200, 36), (36, 132), False, False),    # vec4 path with partial tiles
])
def test_tiled_matmul(sa, sb, ta, tb, vulkan_runner, spirv_val) -> None:
    a, b = data(sa, seed=1), data(sb, seed=2)
    variants = _check(lambda x, y: O.relu(O.matmul(x, y, ta, tb)), (a, b), vulkan_runner,
                      spirv_val, GPU_CODEGEN)
    assert any(f.startswith("vulkan:limit:maxComputeSharedMemorySize>=")
               for f in variants[0].features), "the tiled path stages K slices in shared memory"
    n, kk = (sb[-2] if tb else sb[-1]), (sa[-2] if ta else sa[-1])
    vec4 = not (ta or tb) and kk % 4 == 0 and n % 4 == 0
    assert _uses_vec4_buffers(bytes(variants[0].payload)) == vec4


def test_tiled_matmul_within_small_limits(vulkan_runner, spirv_val) -> None:
    a, b = data((100, 70), seed=3), data((70, 90), seed=4)
    variants = _check(O.matmul, (a, b), vulkan_runner, spirv_val,
                      {"target-triple": "mobile"})
    ep = variants[0].entry_points[0]
    assert ep.workgroup_size[0] <= 128
    assert "vulkan:limit:maxComputeWorkGroupInvocations>=128" in variants[0].features


def test_grid_split_past_65535_workgroups(vulkan_runner, spirv_val) -> None:
    x = data((65535 * 64 + 100,), seed=5)
    variants = _check(O.exp, (x,), vulkan_runner, spirv_val, rtol=1e-5, atol=1e-6)
    gx, gy, gz = variants[0].entry_points[0].workgroup_count
    assert gx <= 65535 and gy == 2 and gz == 1


def test_tree_reduction_and_seed_env(vulkan_runner, spirv_val) -> None:
    x = data((3, 5000), seed=6)
    variants = _check(lambda t: O.sum(t, axis=1), (x,), vulkan_runner, spirv_val,
                      {"target-env": SEED_ENV}, rtol=1e-5)
    ep = variants[0].entry_points[0]
    assert ep.workgroup_count == (3, 1, 1) and ep.workgroup_size[0] <= 128
    shared = [f for f in variants[0].features if "SharedMemorySize" in f]
    assert shared and int(shared[0].split(">=")[1]) <= 16384


def _copy_kernel(n: int, dtype: str = "float32") -> KernelExecutable:
    src, dst = KernelOperand(0, (n,), dtype), KernelOperand(1, (n,), dtype)
    ident = IndexingMap.identity(1)
    return KernelExecutable("e", (GenericKernel(
        "neg", (n,), ("parallel",), (MappedOperand(src, ident),), (MappedOperand(dst, ident),),
        (ScalarOp("neg", (Input(0),), dtype),), (Result(0),)),))


def test_storage_buffer_range_declines() -> None:
    env = with_limits(TRIPLES["lavapipe"], maxStorageBufferRange=1024)
    with pytest.raises(UnsupportedKernelError, match="maxStorageBufferRange"):
        compile_executable(_copy_kernel(1000), env)
    assert compile_executable(_copy_kernel(256), env).entry_points[0].name == "neg"


def test_64_bit_types_need_device_features() -> None:
    lavapipe = compile_executable(_copy_kernel(8, "float64"), TRIPLES["lavapipe"])
    assert "vulkan:feature:shaderFloat64" in lavapipe.features
    with pytest.raises(UnsupportedKernelError, match="shaderFloat64"):
        compile_executable(_copy_kernel(8, "float64"), TRIPLES["mobile"])
    with pytest.raises(UnsupportedKernelError, match="shaderInt64"):
        compile_executable(_copy_kernel(8, "int64"), TRIPLES["mobile"])
    plain = compile_executable(_copy_kernel(8), TRIPLES["mobile"])
    assert not any(f.startswith("vulkan:feature:") for f in plain.features)


def test_unknown_option_and_triple_are_errors() -> None:
    ir = _module(O.exp, np.zeros(4, np.float32))
    with pytest.raises(CompileError, match="--vulkan-target-triple"):
        hal_core.compile(ir, target_backends=("vulkan-spirv",),
                         target_options={"vulkan-spirv": {"target-triple": "nope"}})
    with pytest.raises(CompileError, match="no option"):
        hal_core.compile(ir, target_backends=("vulkan-spirv",),
                         target_options={"vulkan-spirv": {"bogus": "1"}})


def test_env_overrides_triple() -> None:
    from hal_vulkan.target_env import target_env_from_options
    env = target_env_from_options("ampere", SEED_ENV)
    assert env == parse_target_env(SEED_ENV)
    assert env.limit("maxComputeWorkGroupSize") == (128, 8, 4)
    assert target_env_from_options("hopper", None).limit("subgroupSize") == 32


def test_matmul_kernel_ir_directly(vulkan_runner, spirv_val) -> None:
    """A batch-broadcast matmul straight from kernel IR through the tiled path."""
    lhs, rhs = KernelOperand(0, (2, 70, 50), "float32"), KernelOperand(1, (50, 90), "float32")
    out = KernelOperand(2, (2, 70, 90), "float32")
    variant = compile_executable(KernelExecutable("mm", (MatmulKernel("mm", lhs, rhs, out),)),
                                 TRIPLES["ampere"])
    spirv_val(bytes(variant.payload))
    assert variant.entry_points[0].workgroup_count[2] == 2


def test_declined_kernel_falls_back_to_another_target() -> None:
    """The mobile baseline lacks float64: vmvx serves that kernel, vulkan-spirv the rest."""
    x, y = np.ones((4,), np.float64), np.ones((3,), np.float32)
    module = hal_core.compile(_module(lambda a, b: (O.exp(a), O.mul(b, b)), x, y),
                              target_backends=("vulkan-spirv", "vmvx"),
                              target_options={"vulkan-spirv": {"target-triple": "mobile"}})
    formats = sorted(tuple(v.format for v in ex.variants) for ex in module.executables)
    assert ("vmvx-bytecode",) in formats, formats
    assert ("spirv", "vmvx-bytecode") in formats, formats


@pytest.mark.parametrize("xs,ws,kwargs", [
    ((2, 16, 20, 20), (64, 16, 3, 3), {"padding": 1}),
    ((1, 8, 33, 31), (96, 4, 3, 2), {"groups": 2, "strides": (2, 1), "dilations": (1, 2),
                                     "padding": (1, 0, 2, 1)}),
])
def test_conv_implicit_gemm(xs, ws, kwargs, vulkan_runner, spirv_val) -> None:
    x, w, bias = data(xs, seed=7), data(ws, seed=8), data((ws[0],), seed=9)
    variants = _check(lambda a, b, c: O.relu(O.conv2d(a, b, c, **kwargs)), (x, w, bias),
                      vulkan_runner, spirv_val, GPU_CODEGEN)
    conv = [v for v in variants if any("SharedMemorySize" in f for f in v.features)]
    assert conv, "the conv took the shared-memory implicit-GEMM path"


def test_signed_zero_preservation_is_requested(spirv_val) -> None:
    """Envs with float controls get SignedZeroInfNanPreserve on non-GEMM kernels (kernel IR
    tells -0.0 from 0.0); Vulkan 1.1 envs then require the extension, 1.2+ have it core."""
    k = _copy_kernel(8)
    env11 = parse_target_env("#vk.target_env<v1.1, r(0), [VK_KHR_shader_float_controls], {}>")
    v = compile_executable(k, env11)
    spirv_val(bytes(v.payload))
    assert "vulkan:ext:VK_KHR_shader_float_controls" in v.features
    v12 = compile_executable(k, parse_target_env("#vk.target_env<v1.2, r(0), [], {}>"))
    spirv_val(bytes(v12.payload), "vulkan1.2")
    assert not any(f.startswith("vulkan:ext:") for f in v12.features)
    plain = compile_executable(k, TRIPLES["lavapipe"])
    assert b"SPV_KHR_float_controls" not in bytes(plain.payload)


def test_vec4_matmul_whole_tiles_without_bounds_checks(vulkan_runner, spirv_val) -> None:
    """256x128x64: whole tiles take the unguarded loop (prefetch clamped to the last slice)."""
    a, b = data((256, 64), seed=10), data((64, 128), seed=11)
    variants = _check(O.matmul, (a, b), vulkan_runner, spirv_val, GPU_CODEGEN)
    assert variants[0].entry_points[0].workgroup_count == (1, 2, 1)
    guarded = _check(O.matmul, (data((256, 68), seed=12), data((68, 128), seed=13)),
                     vulkan_runner, spirv_val, GPU_CODEGEN)
    assert len(bytes(guarded[0].payload)) > len(bytes(variants[0].payload))


def test_reduction_order_follows_memory_layout(vulkan_runner, spirv_val) -> None:
    """Reducing the contiguous axis: a workgroup per output (tree); reducing a leading axis:
    an invocation per output, neighbours reading neighbouring columns."""
    x = data((64, 300), seed=14)
    rows = _check(lambda t: O.sum(t, axis=1), (x,), vulkan_runner, spirv_val, rtol=1e-5)
    assert rows[0].entry_points[0].workgroup_count == (64, 1, 1)
    cols = _check(lambda t: O.sum(t, axis=0), (x.T.copy(),), vulkan_runner, spirv_val,
                  rtol=1e-5)
    assert cols[0].entry_points[0].workgroup_count == (1, 1, 1)
    assert not any("SharedMemorySize" in f for f in cols[0].features)


@pytest.mark.parametrize("log", [False, True])
def test_softmax_rows_by_workgroup(log, vulkan_runner, spirv_val) -> None:
    """Long contiguous rows: a workgroup per row with shared-memory max and sum trees."""
    x = data((3, 5, 1000), seed=15, lo=-20, hi=20)
    fn = O.log_softmax if log else O.softmax
    variants = _check(lambda t: O.mul(fn(t, axis=-1), 2.0), (x,), vulkan_runner, spirv_val,
                      rtol=1e-5, atol=1e-6)
    assert variants[0].entry_points[0].workgroup_count == (15, 1, 1)


@pytest.mark.parametrize("name", ["exp", "log", "sigmoid", "tanh", "erf"])
def test_float64_exp_log_are_double_precision(name, vulkan_runner, spirv_val) -> None:
    """GLSL.std.450 has no float64 exp/log: ours must still be double precision everywhere."""
    g = np.random.default_rng(16)
    x = np.concatenate([g.uniform(-750, 750, 2000), g.uniform(-5, 5, 2000),
                        np.exp(g.uniform(-700, 700, 2000)),
                        [0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 5e-324, 1e-310,
                         709.78, 709.79, -745.1, -745.2, 1e308]])
    # Within 1e-14 relative on lavapipe; NVIDIA's driver (H200, 580.159) reached 2.4e-14 on
    # sigmoid's 1 / (1 + exp(-x)) for x near -600: its float64 division is not correctly
    # rounded, which Vulkan allows; 5e-14 is about 225 ulp of float64.
    rtol = 5e-14 if name == "sigmoid" else 1e-14
    variants = _check(getattr(O, name), (x,), vulkan_runner, spirv_val, rtol=rtol, atol=0)
    assert "vulkan:feature:shaderFloat64" in variants[0].features


def test_float64_softmax_rows(vulkan_runner, spirv_val) -> None:
    x = data((4, 300), "float64", seed=17, lo=-30, hi=30)
    _check(lambda t: O.log_softmax(t, axis=-1), (x,), vulkan_runner, spirv_val, rtol=1e-13,
           atol=1e-13)


# Vulkan lets drivers flush float32 denormals (lavapipe does): atol covers them.
@pytest.mark.parametrize("dtype,rtol,atol", [("float64", 1e-13, 0), ("float32", 1e-5, 2e-38)])
def test_pow_special_values(dtype, rtol, atol, vulkan_runner, spirv_val) -> None:
    g = np.random.default_rng(18)
    x = np.concatenate([g.uniform(0, 10, 500), -g.integers(1, 5, 500).astype(np.float64),
                        [0.0, 0.0, 0.0, np.inf, 1.0, np.nan, -2.0, 2.0]])
    y = np.concatenate([g.uniform(-50, 50, 500), g.integers(-9, 9, 500).astype(np.float64),
                        [0.0, 2.0, -1.0, -1.0, np.nan, 0.0, 0.5, 1000.0]])
    _check(O.pow, (x.astype(dtype), y.astype(dtype)), vulkan_runner, spirv_val, rtol=rtol,
           atol=atol)


def test_scalar_tiled_matmul_whole_tiles(vulkan_runner, spirv_val) -> None:
    """A transposed 128x128x32 product: the scalar tiled path without bounds checks."""
    a, b = data((32, 128), seed=19), data((128, 32), seed=20)
    variants = _check(lambda x, y: O.matmul(x, y, True, True), (a, b), vulkan_runner, spirv_val,
                      GPU_CODEGEN)
    assert not _uses_vec4_buffers(bytes(variants[0].payload))


def _uses_atomics(spirv: bytes) -> bool:
    words = np.frombuffer(spirv, np.uint32)
    return any(w & 0xFFFF in (240, 241) for w in words[5:] if w >> 16 == 7)


@pytest.mark.parametrize("build,inputs", [
    (O.lt, (data((64, 128), seed=21), data((64, 128), seed=22))),                 # bool
    (lambda t: O.cast(t, "float16"), (data((6, 66), seed=23),)),                  # half
    (lambda t: O.cast(O.mul(t, 10.0), "int8"), (data((2, 3, 8), seed=24),)),      # int8
])
def test_small_outputs_in_whole_words(build, inputs, vulkan_runner, spirv_val) -> None:
    """1/2-byte outputs whose rows fill whole words: an invocation computes a word's worth of
    points and stores it plainly (no atomic read-modify-write)."""
    variants = _check(build, inputs, vulkan_runner, spirv_val, rtol=1e-3, atol=1e-3)
    assert not _uses_atomics(bytes(variants[0].payload))


def test_small_outputs_with_odd_rows_use_atomics(vulkan_runner, spirv_val) -> None:
    variants = _check(O.lt, (data((5, 7), seed=25), data((5, 7), seed=26)), vulkan_runner,
                      spirv_val)
    assert _uses_atomics(bytes(variants[0].payload))
