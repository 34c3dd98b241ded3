"""Regression tests (issue 6): a value returned twice round-trips through the text format; erf
of a one-element tensor in the reference and in constant folding; ``reduce_* {axes = []}`` is
the identity."""

from __future__ import annotations

import math

import numpy as np
import pytest

import hal_core
from hal_core import ir

RETURN_TWICE = """\
func.func @main(%a: tensor<2x3xf32>) -> (tensor<2x3xf32>, tensor<2x3xf32>) {
  %0 = exp %a : (tensor<2x3xf32>) -> tensor<2x3xf32>
  return %0, %0 : tensor<2x3xf32>, tensor<2x3xf32>
}
"""


def test_a_value_returned_twice_parses_and_round_trips():
    module = ir.parse(RETURN_TWICE)
    fn = module.functions[0]
    assert [v.name for v in fn.results] == ["0", "0"]
    assert ir.print_module(module) == RETURN_TWICE
    assert ir.print_module(ir.parse(ir.print_module(module))) == RETURN_TWICE


def test_a_value_returned_twice_runs():
    x = np.zeros((2, 3), np.float32)
    with hal_core.load_module(hal_core.compile(RETURN_TWICE, target_backends=["vmvx"]),
                              "local-sync") as m:
        a, b = m.main(x)
    np.testing.assert_array_equal(a, 1)
    np.testing.assert_array_equal(b, 1)


@pytest.mark.parametrize("shape", ["", "1x", "1x1x"])
def test_erf_of_one_element_in_reference_and_folding(shape):
    t = f"tensor<{shape}f32>"
    src = f"""func.func @main(%a: {t}) -> ({t}, {t}) {{
  %c = constant dense<0.5> : {t}
  %0 = erf %a : ({t}) -> {t}
  %1 = erf %c : ({t}) -> {t}
  return %0, %1 : {t}, {t}
}}"""
    x = np.full(tuple(int(d) for d in shape.split("x") if d), 0.5, np.float32)
    want = np.float32(math.erf(0.5))
    ref = ir.evaluate(ir.parse(src).functions[0], x)
    for got in ref:
        assert isinstance(got, np.ndarray) and got.shape == x.shape
        np.testing.assert_allclose(got, want, rtol=1e-6)
    with hal_core.load_module(hal_core.compile(src, target_backends=["vmvx"]), "local-sync") as m:
        for got in m.main(x):  # %1 was folded at compile time
            np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("op", ["reduce_sum", "reduce_prod", "reduce_max", "reduce_min",
                                "reduce_mean"])
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("model", ["async", "inline"])
def test_reduce_over_no_axes_is_the_identity(op, keepdims, model):
    kd = ", keepdims = true" if keepdims else ""
    src = f"""func.func @main(%a: tensor<2x3xf32>) -> (tensor<2x3xf32>, tensor<2x3xf32>) {{
  %0 = {op} %a {{axes = []{kd}}} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %1 = exp %0 : (tensor<2x3xf32>) -> tensor<2x3xf32>
  return %0, %1 : tensor<2x3xf32>, tensor<2x3xf32>
}}"""
    x = np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5
    ref = ir.evaluate(ir.parse(src).functions[0], x)
    np.testing.assert_array_equal(ref[0], x)
    module = hal_core.compile(src, target_backends=["vmvx"], execution_model=model)
    with hal_core.load_module(module, "local-task") as m:
        same, e = m.main(x)
    np.testing.assert_array_equal(same, x)
    np.testing.assert_allclose(e, np.exp(x), rtol=1e-6)


def test_reduce_over_no_axes_of_integers_and_constants():
    src = """func.func @main(%a: tensor<4xi8>) -> (tensor<4xi8>, tensor<4xi8>) {
  %c = constant dense<[1, 2, 3, 4]> : tensor<4xi8>
  %0 = reduce_sum %a {axes = []} : (tensor<4xi8>) -> tensor<4xi8>
  %1 = reduce_prod %c {axes = []} : (tensor<4xi8>) -> tensor<4xi8>
  return %0, %1 : tensor<4xi8>, tensor<4xi8>
}"""
    x = np.array([-128, 5, 0, 127], np.int8)
    with hal_core.load_module(hal_core.compile(src, target_backends=["vmvx"]), "local-sync") as m:
        a, b = m.main(x)
    np.testing.assert_array_equal(a, x)
    np.testing.assert_array_equal(b, [1, 2, 3, 4])
