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


@pytest.mark.parametrize("scipy", [True, False], ids=["scipy", "no-scipy"])
def test_erf_microkernel_accepts_a_0d_array(monkeypatch, scipy):
    from hal_vmvx.microkernels import _erf

    if not scipy:  # the exact fallback used where scipy is not installed
        monkeypatch.setitem(sys.modules, "scipy.special", None)
    out = np.zeros((), np.float32)
    np.copyto(out, _erf(np.asarray(np.float32(0.5))), casting="unsafe")
    np.testing.assert_allclose(out, math.erf(0.5), rtol=1e-6)


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


@pytest.mark.parametrize("model", ["async", "inline"])
def test_chunked_f32_sum_adds_chunks_in_wide_precision(model):
    n = 4_000_000  # many chunks; each adds ~6 to 2**24, which f32 rounds each time
    t = f"tensor<{n}xf32>"
    module = hal_core.compile(f"""func.func @main(%x: {t}) -> tensor<f32> {{
  %0 = reduce_sum %x {{axes = [0]}} : ({t}) -> tensor<f32>
  return %0 : tensor<f32>
}}""", target_backends=["vmvx"], execution_model=model)
    x = np.full(n, 1e-4, np.float32)
    x[0] = 2**24
    want = x.astype(np.float64).sum()
    with hal_core.load_module(module, "local-sync") as m:
        got = float(m.main(x))
    assert abs(got - want) / want <= 2 * np.finfo(np.float32).eps  # was 5e-6
