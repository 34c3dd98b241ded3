"""float32 transcendentals generated as polynomials: within 1e-6 relative of float64 math."""

from __future__ import annotations

import math

import numpy as np
import pytest
from llvm_harness import ident, operand, run

from hal_core.compiler import kernel_ir as K


def _unary(opcode: str, n: int, dtype: str = "float32") -> K.GenericKernel:
    x, y = operand(0, (n,), dtype), operand(1, (n,), dtype)
    return K.GenericKernel(opcode, (n,), ("parallel",), (ident(x),), (ident(y),),
                           (K.ScalarOp(opcode, (K.Input(0),), dtype),), (K.Result(0),))


_REF = {
    "exp": np.exp, "log": np.log, "tanh": np.tanh, "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "erf": np.vectorize(math.erf),
}
_RANGES = {
    "exp": [(-87, 88), (-1e-3, 1e-3), (-103, -87)], "log": [(1e-30, 1e-3), (0.5, 2), (1, 1e30)],
    "tanh": [(-10, 10), (-0.7, 0.7), (-1e-4, 1e-4)], "sigmoid": [(-80, 30), (-1, 1)],
    "erf": [(-5, 5), (-0.6, 0.6), (-1e-4, 1e-4)],
}


@pytest.mark.parametrize("opcode", sorted(_REF))
def test_float32_relative_error_within_1e6(opcode):
    g = np.random.default_rng(0)
    xs = np.concatenate([g.uniform(lo, hi, 20000) if opcode != "log" else
                         np.exp(g.uniform(np.log(lo), np.log(hi), 20000))
                         for lo, hi in _RANGES[opcode]]).astype(np.float32)
    got = run(_unary(opcode, xs.size), {0: xs}, {1: (xs.shape, "float32")})[1]
    want = _REF[opcode](xs.astype(np.float64))
    # Results below float32's normal range carry absolute, not relative, precision.
    tiny = np.abs(want) < np.finfo(np.float32).tiny
    rel = np.abs(got[~tiny] - want[~tiny]) / np.abs(want[~tiny])
    worst = xs[~tiny][rel.argmax()]
    assert rel.max() <= 1e-6, f"{opcode}: max rel error {rel.max():.3g} at x={worst}"
    assert np.all(np.abs(got[tiny] - want[tiny]) <= 2 * np.finfo(np.float32).smallest_subnormal)


@pytest.mark.parametrize("opcode", sorted(_REF))
def test_special_values_follow_numpy(opcode):
    xs = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-45, 100.0, -100.0], np.float32)
    got = run(_unary(opcode, xs.size), {0: xs}, {1: (xs.shape, "float32")})[1]
    with np.errstate(all="ignore"):
        want = _REF[opcode](xs.astype(np.float64)).astype(np.float32)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=0, equal_nan=True)


@pytest.mark.parametrize("opcode", sorted(_REF))
def test_float64_matches_numpy(opcode):
    xs = np.random.default_rng(1).uniform(0.01, 5, 1000)
    got = run(_unary(opcode, xs.size, "float64"), {0: xs}, {1: (xs.shape, "float64")})[1]
    np.testing.assert_allclose(got, _REF[opcode](xs), rtol=1e-13)
