"""Regression tests for vmvx float results (issue 6): erf of one element, f16 sigmoid and rsqrt
computed in f32 and rounded once, chunked f32 sums accumulated wide."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from harness import run, unary_kernel

import hal_core


@pytest.mark.parametrize("shape", [(), (1,), (1, 1)])
def test_erf_of_one_element(shape):
    x = np.full(shape, 0.5, np.float32)
    got = run(unary_kernel("erf", shape, "float32"), {0: x}, {1: (shape, "float32")})[1]
    assert got.shape == shape
    np.testing.assert_allclose(got, np.float32(math.erf(0.5)), rtol=1e-6)


def test_erf_microkernel_needs_no_scipy_and_accepts_a_0d_array(monkeypatch):
    from hal_vmvx.erf import erf

    monkeypatch.setitem(sys.modules, "scipy", None)  # as where scipy is not installed
    monkeypatch.setitem(sys.modules, "scipy.special", None)
    out = np.zeros((), np.float32)
    erf(np.asarray(np.float32(0.5)), out)
    np.testing.assert_allclose(out, math.erf(0.5), rtol=1e-7)
    got = run(unary_kernel("erf", (), "float32"), {0: np.float32(-0.5)}, {1: ((), "float32")})[1]
    np.testing.assert_allclose(got, -math.erf(0.5), rtol=1e-7)


F16 = np.concatenate([np.linspace(-20, 20, 801), [-11.5, -12, -15, -17, 1e-3, 6e-5, 65504]]
                     ).astype(np.float16)


@pytest.mark.parametrize("opcode", ["sigmoid", "rsqrt"])
def test_f16_sigmoid_and_rsqrt_are_computed_in_f32_and_rounded_once(opcode):
    x = F16 if opcode == "sigmoid" else np.abs(F16) + np.float16(1e-3)
    got = run(unary_kernel(opcode, x.shape, "float16"), {0: x}, {1: (x.shape, "float16")})[1]
    x32, one = x.astype(np.float32), np.float32(1)
    want = (one / (one + np.exp(-x32)) if opcode == "sigmoid" else one / np.sqrt(x32))
    np.testing.assert_array_equal(got, want.astype(np.float16))
    if opcode == "sigmoid":
        assert got[x == np.float16(-12)].min() > 0  # was 0: exp(12) overflows f16


@pytest.mark.parametrize("shape, axes", [((4_000_000,), "0"), ((4000, 1000), "0, 1"),
                                         ((100_000, 40), "0, 1")])
@pytest.mark.parametrize("model", ["async", "inline"])
def test_chunked_f32_sum_adds_chunks_in_wide_precision(model, shape, axes):
    # Many chunks, each adding ~6 to 2**24, which f32 rounds every time (was 5e-6 off).
    t = f"tensor<{'x'.join(map(str, shape))}xf32>"
    module = hal_core.compile(f"""func.func @main(%x: {t}) -> tensor<f32> {{
  %0 = reduce_sum %x {{axes = [{axes}]}} : ({t}) -> tensor<f32>
  return %0 : tensor<f32>
}}""", target_backends=["vmvx"], execution_model=model)
    x = np.full(shape, 1e-4, np.float32)
    x.reshape(-1)[0] = 2**24
    want = x.astype(np.float64).sum()
    for device in ("local-sync", "local-task"):
        with hal_core.load_module(module, device) as m:
            got = float(m.main(x))
        assert abs(got - want) / want <= 2 * np.finfo(np.float32).eps, device
