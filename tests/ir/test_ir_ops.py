"""Every op: builds, verifies, round-trips through text, and evaluates like numpy."""

from __future__ import annotations

import numpy as np
import pytest
from ir_cases import CASES, Case

from hal_core import ir
from hal_core.ir.reference import evaluate


def build(case: Case) -> ir.Module:
    b = ir.Builder()
    with b.function("main", [(f"a{i}", s, d) for i, (s, d) in enumerate(case.inputs)]) as f:
        f.ret(f.op(case.op, *f.args, **case.attrs))
    return b.module()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_round_trip(case: Case) -> None:
    m = build(case)
    text = ir.print_module(m)
    again = ir.parse(text)
    assert again == m
    assert ir.print_module(again) == text
    assert f"= {case.op} " in text


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_reference_matches_numpy(case: Case) -> None:
    m = build(case)
    fn = m["main"]
    inputs = case.make_inputs(np.random.default_rng(len(case.id)))
    (got,) = evaluate(fn, *inputs)
    want = np.asarray(case.ref(*inputs))
    t = fn.results[0].type
    assert got.shape == t.shape and got.dtype == np.dtype(t.numpy_dtype)
    assert want.shape == got.shape
    if got.dtype.kind == "f":
        tol = 2e-3 if got.dtype == np.float16 else 1e-5
        np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64),
                                   rtol=tol, atol=tol)
    else:
        np.testing.assert_array_equal(got, want.astype(got.dtype))


def test_every_op_has_a_case() -> None:
    assert {c.op for c in CASES} == set(ir.OPS)


def test_evaluate_checks_inputs() -> None:
    from hal_core.errors import UsageError

    fn = build(CASES[0])["main"]
    with pytest.raises(UsageError, match="takes 2 inputs"):
        evaluate(fn, np.zeros((3, 4), np.float32))
    with pytest.raises(UsageError, match=r"argument %a1: expected tensor<4xf32>"):
        evaluate(fn, np.zeros((3, 4), np.float32), np.zeros((4,), np.float64))


def test_gather_out_of_range_is_a_clear_error() -> None:
    from hal_core.errors import HalRuntimeError

    fn = ir.parse("""func.func @main(%x: tensor<3xf32>, %i: tensor<2xi32>) -> tensor<2xf32> {
  %0 = gather %x, %i
  return %0
}""")["main"]
    with pytest.raises(HalRuntimeError, match=r"indices must lie in \[-3, 3\)"):
        evaluate(fn, np.zeros(3, np.float32), np.array([0, 3], np.int32))
