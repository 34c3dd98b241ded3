"""Every program of the end-to-end op suite, compiled for vulkan-spirv: each SPIR-V binary
passes spirv-val (vulkan1.1) and runs on lavapipe, under the validation layer, matching the
reference evaluator. Kernels the target declines must be declined for a listed reason."""

from __future__ import annotations

import numpy as np
import pytest
import test_e2e_elementwise
import test_e2e_fusion
import test_e2e_linalg
import test_e2e_programs
import test_e2e_random_programs
import test_e2e_reductions
import test_e2e_shape_ops
from e2e_support import assert_close

import hal_core
from hal_core.errors import CompileError
from hal_core.ir import evaluate

CASES = (test_e2e_elementwise.CASES + test_e2e_reductions.CASES + test_e2e_linalg.CASES
         + test_e2e_shape_ops.CASES + test_e2e_fusion.CASES + test_e2e_programs.CASES
         + test_e2e_random_programs.CASES)
#: Why the target may decline a kernel of the suite (contract 3: vmvx or llvm-cpu take those
#: kernels). With lavapipe's limits and features, none: every kernel compiles.
DECLINE_REASONS: tuple[str, ...] = ()
#: Cases whose vulkan result may differ from the reference, and why.
KNOWN_DIFFERENCES = {
    # Vulkan may drop the sign of zero unless a shader asks for SignedZeroInfNanPreserve (envs
    # of Vulkan 1.2+ or listing VK_KHR_shader_float_controls do); lavapipe (Mesa 22.3) folds
    # x * -0.0 to +0.0 even then (see test_signed_zero_preservation_is_requested).
    "negative-zero-constant",
}


#: The mobile baseline has no 64-bit types: kernels computing with them are declined too.
MOBILE_DECLINES = ("lacks shaderInt64", "lacks shaderFloat64")


def _compile(case, triple: str = "lavapipe"):
    ir = case.function()
    try:
        return ir, hal_core.compile(ir, target_backends=("vulkan-spirv",), target_options={
            "vulkan-spirv": {"target-triple": triple}})
    except CompileError as e:
        reasons = MOBILE_DECLINES if triple == "mobile" else DECLINE_REASONS
        assert any(r in str(e) for r in reasons), f"{case.id}: unexpected decline: {e}"
        pytest.xfail(f"declined: {e}")  # the documented decline; other targets compile it


@pytest.mark.parametrize("triple", ["lavapipe", "mobile"])
@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_spirv_validates_and_runs(case, triple, spirv_val, vulkan_runner) -> None:
    """lavapipe's own limits, and the conservative mobile baseline (128 invocations, 16 KiB of
    shared memory, no 64-bit types: argmax/gather/copies of int64 still compile)."""
    ir, module = _compile(case, triple)
    variants = [v for ex in module.executables for v in ex.variants]
    for v in variants:
        assert v.format == "spirv"
        assert "vulkan:api>=1.1" in v.features
        spirv_val(bytes(v.payload))
    vulkan_runner.messages.clear()
    got = vulkan_runner.run(module, list(case.inputs))
    assert not vulkan_runner.messages, "validation layer: " + "\n".join(vulkan_runner.messages)
    with np.errstate(all="ignore"):
        want = evaluate(ir.functions[0], *case.inputs)
    if case.id in KNOWN_DIFFERENCES:
        return
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        assert_close(g, np.asarray(w), case.rtol, case.atol, f"{case.id} result {i}")


VK13_ENV = ("#vk.target_env<v1.3, r(0), [], {maxComputeWorkGroupInvocations = 256 : i32, "
            "maxComputeWorkGroupSize = dense<[256, 256, 64]> : vector<3xi32>, "
            "shaderInt64 = true, shaderFloat64 = true}>")


@pytest.mark.parametrize("option,value,rules", [("target-env", VK13_ENV, "vulkan1.3"),
                                                ("target-triple", "hopper", "vulkan1.1")])
@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_spirv_validates_for_other_envs(case, option, value, rules, spirv_val) -> None:
    """A Vulkan 1.3 environment gets SPIR-V 1.6, valid under spirv-val's vulkan1.3 rules; the
    hopper triple (the H200's limits, not lavapipe's) is validated without running."""
    try:
        module = hal_core.compile(case.function(), target_backends=("vulkan-spirv",),
                                  target_options={"vulkan-spirv": {option: value}})
    except CompileError as e:
        assert any(r in str(e) for r in DECLINE_REASONS), f"{case.id}: unexpected decline: {e}"
        pytest.xfail(f"declined: {e}")
    for ex in module.executables:
        for v in ex.variants:
            version = bytes([0, 6 if rules == "vulkan1.3" else 3, 1, 0])
            assert bytes(v.payload)[4:8] == version, "SPIR-V 1.6 / 1.3 header"
            spirv_val(bytes(v.payload), rules)
