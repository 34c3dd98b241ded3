"""Reductions, arg-reductions and softmax end to end."""

from __future__ import annotations

import numpy as np
import pytest
from e2e_support import TARGET_DEVICES, Case, data, params, run_case

from hal_core.ir import ops as O

CASES: list[Case] = []
AXES = [((4, 5, 6), (1,), False), ((4, 5, 6), (0, 2), True), ((4, 5, 6), (0, 1, 2), False),
        ((3, 4), (-1,), True), ((7,), (0,), False), ((3, 0, 2), (1,), False),
        ((0, 3), (1,), True), ((2, 1, 3), (1,), False)]
NP = {"sum": np.sum, "prod": np.prod, "max": np.max, "min": np.min, "mean": np.mean}

for kind in ("sum", "prod", "max", "min", "mean"):
    for i, (shape, axes, keep) in enumerate(AXES):
        if kind in ("max", "min") and 0 in shape and shape[axes[0]] == 0:
            continue  # numpy has no identity to compare with; the evaluator's is checked below
        lo, hi = (0.5, 1.5) if kind == "prod" else (-3, 3)
        x = data(shape, "float32", 40 + i, lo, hi)
        CASES.append(Case(
            f"reduce_{kind}-f32-{i}",
            lambda t, k=kind, a=axes, kd=keep: getattr(O, k)(t, axis=a, keepdims=kd), (x,),
            None if 0 in shape else (lambda t, k=kind, a=axes, kd=keep:
                                     NP[k](t, axis=a, keepdims=kd)),
            rtol=1e-5, atol=1e-5, ops=(f"reduce_{kind}",)))
    for dt in ("int32", "int8", "uint8", "float16", "float64", "int64"):
        if kind == "mean" and dt[0] != "f":
            continue
        lo, hi = (0, 3) if kind == "prod" else (-50, 50)
        x = data((3, 5, 4), dt, 50, lo, hi)
        CASES.append(Case(f"reduce_{kind}-{dt}",
                          lambda t, k=kind: getattr(O, k)(t, axis=(0, 2)), (x,),
                          rtol=1e-2 if dt == "float16" else 1e-6, atol=1e-2,
                          ops=(f"reduce_{kind}",)))
CASES.append(Case("reduce_max-empty-axis", lambda t: O.max(t, axis=1), (data((3, 0)),),
                  ops=("reduce_max",)))
CASES.append(Case("reduce_sum-strided", lambda t: O.sum(t, axis=0),
                  (data((8, 6), seed=51)[::2, ::-1],), lambda t: t.sum(0), ops=("reduce_sum",)))

for name in ("argmax", "argmin"):
    fn = getattr(np, name)
    for dt in ("float32", "int32", "uint8", "float16"):
        x = np.round(data((4, 5, 3), dt, 52, -3, 3)).astype(dt)  # ties: the first wins
        for axis, keep in ((0, False), (1, True), (-1, False)):
            CASES.append(Case(f"{name}-{dt}-{axis}-{keep}",
                              lambda t, n=name, a=axis, k=keep: getattr(O, n)(t, a, k), (x,),
                              lambda t, f=fn, a=axis, k=keep: f(t, axis=a, keepdims=k),
                              ops=(name,)))
    x = data((3, 4), seed=53)
    x[1, 2] = np.nan
    CASES.append(Case(f"{name}-nan", lambda t, n=name: getattr(O, n)(t, 1), (x,),
                      lambda t, f=fn: f(t, axis=1), ops=(name,)))


def _softmax(x, axis, log=False):
    x = x.astype(np.float64)
    s = x - x.max(axis=axis, keepdims=True)
    lse = np.log(np.exp(s).sum(axis=axis, keepdims=True))
    return s - lse if log else np.exp(s - lse)


for name in ("softmax", "log_softmax"):
    for dt in ("float32", "float64", "float16"):
        for shape, axis in (((4, 7), -1), ((3, 4, 5), 1), ((6,), 0), ((2, 1), 1)):
            x = data(shape, dt, 54, -5, 5)
            CASES.append(Case(f"{name}-{dt}-{len(shape)}d-{axis}",
                              lambda t, n=name, a=axis: getattr(O, n)(t, a), (x,),
                              lambda t, a=axis, n=name: _softmax(t, a, n == "log_softmax"),
                              rtol=3e-3 if dt == "float16" else 1e-5, atol=1e-5, ops=(name,)))
    CASES.append(Case(f"{name}-strided", lambda t, n=name: getattr(O, n)(t, 0),
                      (data((5, 8), seed=55)[:, ::2],), ops=(name,)))


@pytest.mark.parametrize("target, device_name", TARGET_DEVICES)
@pytest.mark.parametrize("case", params(CASES))
def test_reductions(case: Case, target: str, device_name: str) -> None:
    run_case(case, target, device_name)
