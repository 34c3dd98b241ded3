"""matmul, conv2d and pooling end to end."""

from __future__ import annotations

import numpy as np
import pytest
from e2e_support import TARGET_DEVICES, Case, data, params, run_case

from hal_core.ir import ops as O

CASES: list[Case] = []

MATMUL = [((4, 3), (3, 5), False, False), ((1, 7), (7, 1), False, False),
          ((2, 4, 3), (2, 3, 6), False, False), ((3, 4), (5, 4), False, True),
          ((4, 3), (4, 5), True, False), ((2, 1, 4, 3), (5, 3, 2), False, False),
          ((3, 0), (0, 4), False, False), ((6, 5), (2, 4, 6), True, True)]
for i, (sa, sb, ta, tb) in enumerate(MATMUL):
    for dt in ("float32", "float64", "int32", "float16", "int8"):
        def expected(a, b, ta=ta, tb=tb):
            a = np.swapaxes(a, -1, -2) if ta else a
            b = np.swapaxes(b, -1, -2) if tb else b
            return np.matmul(a.astype(np.float64), b.astype(np.float64))
        lo, hi = (-3, 3)
        CASES.append(Case(f"matmul-{dt}-{i}",
                          lambda a, b, ta=ta, tb=tb: O.matmul(a, b, ta, tb),
                          (data(sa, dt, 60 + i, lo, hi), data(sb, dt, 70 + i, lo, hi)),
                          expected if dt in ("float32", "float64") else None,
                          rtol=3e-3 if dt == "float16" else 1e-5, atol=1e-4, ops=("matmul",)))
CASES.append(Case("matmul-strided", O.matmul,
                  (data((8, 3), seed=80)[::2], data((3, 10), seed=81)[:, ::2]),
                  np.matmul, ops=("matmul",)))

CONV = [  # x shape, w shape, kwargs
    ((1, 3, 6, 6), (4, 3, 3, 3), {}),
    ((2, 2, 7, 5), (3, 2, 3, 2), {"strides": (2, 1), "padding": (1, 0, 1, 2)}),
    ((1, 4, 6, 6), (4, 1, 3, 3), {"groups": 4, "padding": 1}),          # depthwise
    ((1, 4, 8, 8), (6, 2, 3, 3), {"groups": 2, "dilations": 2}),
    ((2, 3, 5, 5), (2, 3, 1, 1), {}),
    ((1, 1, 4, 4), (1, 1, 4, 4), {"padding": (1, 1, 0, 0), "strides": 3}),
]
for i, (xs, ws, kw) in enumerate(CONV):
    for dt in ("float32", "float64", "float16", "int32"):
        bias = i % 2 == 0
        inputs = (data(xs, dt, 90 + i), data(ws, dt, 100 + i)) + \
            ((data((ws[0],), dt, 110 + i),) if bias else ())
        CASES.append(Case(f"conv2d-{dt}-{i}{'-bias' if bias else ''}",
                          lambda *t, kw=kw: O.conv2d(*t, **kw), inputs,
                          rtol=5e-3 if dt == "float16" else 1e-5, atol=1e-3 if dt ==
                          "float16" else 1e-5, ops=("conv2d",)))
CASES.append(Case("conv2d-strided-input", lambda x, w: O.conv2d(x, w, padding=1),
                  (data((1, 2, 10, 6), seed=120)[:, :, ::2], data((3, 2, 3, 3), seed=121)),
                  ops=("conv2d",)))

POOL = [((1, 2, 6, 6), 2, 2, 0, False), ((2, 3, 7, 5), 3, 2, 1, False),
        ((1, 1, 7, 7), 3, 2, 0, True), ((1, 2, 5, 6), (2, 3), (1, 2), (1, 0, 1, 2), True),
        ((1, 1, 4, 4), 1, 1, 0, False)]
for i, (xs, k, s, p, ceil) in enumerate(POOL):
    for dt in ("float32", "float16", "int32", "uint8"):
        CASES.append(Case(f"max_pool2d-{dt}-{i}",
                          lambda x, k=k, s=s, p=p, c=ceil: O.max_pool2d(x, k, s, p, c),
                          (data(xs, dt, 130 + i, -9, 9),), ops=("max_pool2d",)))
    for dt in ("float32", "float64", "float16"):
        for cip in (False, True):
            CASES.append(Case(
                f"avg_pool2d-{dt}-{i}-{'cip' if cip else 'nocip'}",
                lambda x, k=k, s=s, p=p, c=ceil, cip=cip: O.avg_pool2d(x, k, s, p, c, cip),
                (data(xs, dt, 140 + i),), rtol=3e-3 if dt == "float16" else 1e-5,
                atol=1e-3 if dt == "float16" else 1e-6, ops=("avg_pool2d",)))
for dt in ("float32", "int8", "float16"):
    CASES.append(Case(f"global_max_pool2d-{dt}", O.global_max_pool2d,
                      (data((2, 3, 4, 5), dt, 150, -9, 9),),
                      lambda x: x.max(axis=(2, 3), keepdims=True), ops=("global_max_pool2d",)))
for dt in ("float32", "float64", "float16"):
    CASES.append(Case(f"global_avg_pool2d-{dt}", O.global_avg_pool2d,
                      (data((2, 3, 4, 5), dt, 151),),
                      lambda x: x.astype(np.float64).mean(axis=(2, 3), keepdims=True),
                      rtol=3e-3 if dt == "float16" else 1e-5, atol=1e-3, ops=("global_avg_pool2d",)))
CASES.append(Case("global_avg_pool2d-1x1", O.global_avg_pool2d, (data((1, 4, 1, 1), seed=152),),
                  ops=("global_avg_pool2d",)))


@pytest.mark.parametrize("target, device_name", TARGET_DEVICES)
@pytest.mark.parametrize("case", params(CASES))
def test_linalg(case: Case, target: str, device_name: str) -> None:
    run_case(case, target, device_name)
