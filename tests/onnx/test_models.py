"""The onnx package's full-size light models: all nine import and compile as shipped (opset 9,
no upgrade), and with random weights their outputs (and the logits before the final Softmax)
match onnxruntime within 1e-4 relative error on local-sync and local-task."""

from __future__ import annotations

import pytest

import hal_core
from onnx_models import (
    MODELS,
    available_targets,
    onnxruntime_outputs,
    path,
    random_inputs,
    randomized,
    relative_error,
    with_logits,
)

pytest.importorskip("onnxruntime")

TARGETS = available_targets()
# the three with large fully connected layers (AlexNet, ZFNet: 240 MB of weights, VGG-19:
# 550 MB) take most of the time (VGG-19 26 s, ZFNet 15 s, AlexNet 7 s on vmvx): they run on
# local-task with the first target; the others on both drivers with every target
HEAVY = ("bvlc_alexnet", "zfnet512", "vgg19")


# llvm-cpu compiles a full-size model in 15-60 s on the CI's two cores: CI compiles and runs
# the three smallest with it; benchmarks/onnx_models.py checks all nine on every target and
# records compile times and errors (benchmarks/results/onnx_models.json)
LLVM_MODELS = ("squeezenet", "shufflenet", "inception_v1")


def _targets(name: str) -> list[str]:
    return [t for t in TARGETS if t == "vmvx" or name in LLVM_MODELS]


@pytest.mark.parametrize("name", MODELS)
def test_shipped_model_compiles_for_every_cpu_target(name):
    import onnx

    declared = onnx.load(path(name), load_external_data=False).graph.output
    m = hal_core.compile(path(name), _targets(name))
    fn = m.functions[0]
    assert fn.inputs[0].shape == (1, 3, 224, 224)
    assert [r.shape for r in fn.outputs] == [
        tuple(d.dim_value for d in o.type.tensor_type.shape.dim) for o in declared]
    assert sorted(v.target_backend for e in m.executables for v in e.variants) \
        == sorted(_targets(name) * len(m.executables))


CASES = [(n, t, d) for n in MODELS for t in (TARGETS[:1] if n in HEAVY else _targets(n))
         for d in (("local-task",) if n in HEAVY else ("local-sync", "local-task"))]


_COMPILED: dict = {}  # (name, target) -> (compiled module, inputs, onnxruntime outputs)


def _prepared(name: str, target: str):
    """Compile once per model and target; both drivers run the same module."""
    if (name, target) not in _COMPILED:
        _COMPILED.clear()  # one model's weights at a time
        model = with_logits(randomized(name))
        xs = random_inputs(model)
        want = onnxruntime_outputs(model, xs)
        compiled = hal_core.compile(model.SerializeToString(), [target], importer="onnx")
        _COMPILED[(name, target)] = (compiled, xs, want)
    return _COMPILED[(name, target)]


@pytest.mark.parametrize("name,target,driver", CASES)
def test_random_weights_match_onnxruntime(name, target, driver):
    compiled, xs, want = _prepared(name, target)
    with hal_core.load_module(compiled, device=driver) as loaded:
        got = loaded.main(*xs)
    got = got if isinstance(got, tuple) else (got,)
    assert len(got) == len(want) == (1 if name == "densenet121" else 2)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        assert relative_error(g, w) < 1e-4, (name, relative_error(g, w))
    # the logits are spread out, so a wrong layer cannot hide behind a flat softmax
    assert want[-1].std() > 1e-3


@pytest.fixture
def vulkan_device(monkeypatch):
    """A device of the vulkan driver with the Khronos validation layer on; its close() fails
    the test when the layer reported an error. Without a usable Vulkan (driver, device or
    layer) the test skips, except in CI, which installs lavapipe and the layer (.ci/run)."""
    import os

    from hal_core.registry import get_registry

    names = {t.info.name for t in get_registry().targets() if t.error is None}
    reason = None
    if "vulkan-spirv" not in names:
        reason = "the vulkan-spirv target is not installed"
    else:
        monkeypatch.setenv("HAL_VULKAN_VALIDATION", "1")  # read when the instance is created
        try:
            from hal_vulkan.driver.device import VulkanDriver

            device = VulkanDriver().create_device()
        except Exception as e:  # no loader, no device, no validation layer
            reason = f"no vulkan device with validation: {type(e).__name__}: {e}"
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI installs lavapipe and the validation layer: see .ci/run)")
        pytest.skip(reason)
    yield device
    device.close()  # raises when the validation layer reported errors


# On lavapipe (CI) the three take 1.3, 2.5 and 4.4 s for the first call (pipelines are built
# on first use: the vulkan-spirv target gives CPU devices barrier-free GEMM kernels, which
# llvmpipe compiles quickly); benchmarks/onnx_models_vulkan.py runs all nine on a GPU
@pytest.mark.parametrize("name", ("squeezenet", "shufflenet", "resnet50"))
def test_random_weights_match_onnxruntime_on_vulkan(name, vulkan_device):
    model = with_logits(randomized(name))
    xs = random_inputs(model)
    want = onnxruntime_outputs(model, xs)
    compiled = hal_core.compile(model.SerializeToString(), ["vulkan-spirv"], importer="onnx")
    with hal_core.load_module(compiled, device=vulkan_device) as loaded:
        got = loaded.main(*xs)
    assert len(got) == len(want) == 2
    for g, w in zip(got, want):
        assert g.shape == w.shape
        assert relative_error(g, w) < 1e-4, (name, relative_error(g, w))
    assert want[-1].std() > 1e-3
