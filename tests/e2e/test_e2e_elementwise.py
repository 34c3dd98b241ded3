"""Elementwise ops end to end: dtypes, broadcasting, size-1 and zero-size dims, strided inputs."""

from __future__ import annotations

import numpy as np
import pytest
from e2e_support import TARGET_DEVICES, Case, data, params, run_case

from hal_core.ir import ops as O

BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "maximum": np.maximum,
          "minimum": np.minimum}
SHAPE_PAIRS = [((4, 5), (4, 5)), ((3, 1, 4), (5, 1)), ((), (3,)), ((0, 3), (1, 3)),
               ((1,), (2, 3, 1)), ((2, 1), (1, 0))]
CASES: list[Case] = []

for name, fn in BINARY.items():
    for dt in ("float32", "float16", "float64", "int32", "int8", "uint8", "int64"):
        CASES.append(Case(f"{name}-{dt}", lambda a, b, n=name: getattr(O, n)(a, b),
                          (data((4, 5), dt, 1), data((4, 5), dt, 2)), fn, ops=(name,),
                          rtol=1e-3 if dt == "float16" else 1e-6))
    for i, (sa, sb) in enumerate(SHAPE_PAIRS):
        CASES.append(Case(f"{name}-bcast{i}", lambda a, b, n=name: getattr(O, n)(a, b),
                          (data(sa, seed=3), data(sb, seed=4)), fn, ops=(name,)))

for dt in ("float32", "float64", "float16", "int32", "int8", "uint8"):
    a = data((6, 7), dt, 5, lo=-20, hi=20)
    b = data((6, 7), dt, 6, lo=-5, hi=5)
    if dt.startswith(("int", "uint")):
        b[0, :3] = 0  # integer division by zero gives 0
        b[1] = np.where(b[1] == 0, 3, b[1])
    CASES.append(Case(f"div-{dt}", O.div, (a, b), ops=("div",),
                      rtol=1e-3 if dt == "float16" else 1e-6))
CASES.append(Case("div-f32-bcast", O.div, (data((2, 3, 4), seed=7), data((4,), seed=8, lo=1)),
                  np.divide, ops=("div",)))
for dt in ("float32", "float64", "float16"):
    CASES.append(Case(f"pow-{dt}", O.pow, (data((3, 4), dt, 9, lo=0.1, hi=3),
                                           data((4,), dt, 10, lo=-2, hi=2)), np.power,
                      ops=("pow",), rtol=1e-2 if dt == "float16" else 1e-5))

CMP = {"eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal,
       "gt": np.greater, "ge": np.greater_equal}
for name, fn in CMP.items():
    for dt in ("float32", "int32", "uint8", "float16"):
        a, b = data((5, 4), dt, 11, -3, 3), data((4,), dt, 12, -3, 3)
        a = np.round(a).astype(dt)  # equal values occur
        b = np.round(b).astype(dt)
        CASES.append(Case(f"{name}-{dt}", lambda x, y, n=name: getattr(O, n)(x, y), (a, b), fn,
                          ops=(name,)))
for name in ("eq", "ne"):
    CASES.append(Case(f"{name}-bool", lambda x, y, n=name: getattr(O, n)(x, y),
                      (data((3, 4), "bool", 13), data((3, 1), "bool", 14)), CMP[name],
                      ops=(name,)))

LOGIC = {"logical_and": np.logical_and, "logical_or": np.logical_or,
         "logical_xor": np.logical_xor}
for name, fn in LOGIC.items():
    CASES.append(Case(name, lambda x, y, n=name: getattr(O, n)(x, y),
                      (data((4, 6), "bool", 15), data((6,), "bool", 16)), fn, ops=(name,)))
CASES.append(Case("logical_not", O.logical_not, (data((2, 3, 4), "bool", 17),),
                  np.logical_not, ops=("logical_not",)))

UNARY_F = {"exp": (np.exp, -3, 3), "log": (np.log, 0.01, 5), "sqrt": (np.sqrt, 0, 9),
           "rsqrt": (lambda x: 1 / np.sqrt(x), 0.1, 9), "tanh": (np.tanh, -4, 4),
           "sigmoid": (lambda x: 1 / (1 + np.exp(-x)), -6, 6), "erf": (None, -3, 3),
           "floor": (np.floor, -5, 5), "ceil": (np.ceil, -5, 5), "round": (np.round, -5, 5)}
for name, (fn, lo, hi) in UNARY_F.items():
    for dt in ("float32", "float64", "float16"):
        x = data((5, 6), dt, 18, lo, hi)
        if name == "round":
            x[0, :4] = np.array([0.5, 1.5, -2.5, 2.5], dt)  # half to even
        CASES.append(Case(f"{name}-{dt}", getattr(O, name), (x,), fn, ops=(name,),
                          rtol=2e-3 if dt == "float16" else 2e-6, atol=1e-6))
    CASES.append(Case(f"{name}-strided", getattr(O, name),
                      (data((6, 10), "float32", 19, lo, hi)[::2, 1::3],), fn, ops=(name,)))
CASES.append(Case("exp-zero-size", O.exp, (data((0, 4)),), np.exp, ops=("exp",)))
CASES.append(Case("exp-rank0", O.exp, (np.array(0.5, np.float32),), np.exp, ops=("exp",)))

for name, fn in {"neg": np.negative, "abs": np.abs,
                 "relu": lambda x: np.maximum(x, 0)}.items():
    for dt in ("float32", "int32", "int8", "float16", "int64"):
        CASES.append(Case(f"{name}-{dt}", getattr(O, name), (data((3, 7), dt, 20, -9, 9),), fn,
                          ops=(name,)))
    CASES.append(Case(f"{name}-transposed", getattr(O, name), (data((5, 3), seed=21).T,), fn,
                      ops=(name,)))

CASES += [
    Case("clip-f32", lambda x: O.clip(x, -1.0, 2.0), (data((4, 5), seed=22),),
         lambda x: np.clip(x, -1, 2), ops=("clip",)),
    Case("clip-f32-min-only", lambda x: O.clip(x, min=0.5), (data((4, 5), seed=23),),
         lambda x: np.maximum(x, 0.5), ops=("clip",)),
    Case("clip-f32-max-only", lambda x: O.clip(x, max=0.5), (data((4, 5), seed=24),),
         lambda x: np.minimum(x, 0.5), ops=("clip",)),
    Case("clip-i32-fractional", lambda x: O.clip(x, -2.5, 3.5),
         (data((4, 5), "int32", 25, -9, 9),), lambda x: np.clip(x, -2, 3), ops=("clip",)),
    Case("clip-u8", lambda x: O.clip(x, 10.0, 300.0), (data((3, 3), "uint8", 26, 0, 255),),
         lambda x: np.clip(x, 10, 255), ops=("clip",)),
]

CASTS = [("float32", "int32"), ("int32", "float32"), ("float32", "bool"), ("bool", "float32"),
         ("float64", "float16"), ("uint8", "int64"), ("int64", "int8"), ("float16", "float64"),
         ("int32", "bool"), ("bool", "int32")]
for src, dst in CASTS:
    x = data((4, 6), src, 27, -100, 100)
    CASES.append(Case(f"cast-{src}-{dst}", lambda t, d=dst: O.cast(t, d), (x,),
                      lambda t, d=dst: t.astype(d), ops=("cast",)))

CASES += [
    Case("select", O.where, (data((4, 5), "bool", 28), data((4, 5), seed=29),
                             data((4, 5), seed=30)), np.where, ops=("select",)),
    Case("select-bcast", O.where, (data((3, 1), "bool", 31), data((1, 4), "int32", 32),
                                   data((), "int32", 33)), np.where, ops=("select",)),
    # 0.0 == -0.0 in Python: neither CSE, kernel deduplication nor the payload may merge them
    Case("negative-zero-constant", lambda x: (1.0 / (x * 0.0), 1.0 / (x * -0.0)),
         (data((2, 3), seed=34, lo=0.5, hi=2),),
         lambda x: (1 / (x * 0.0), 1 / (x * -0.0)), ops=("div", "mul")),
    Case("select-zero-size", O.where, (data((0, 2), "bool"), data((1, 2)), data((2,))),
         np.where, ops=("select",)),
]


@pytest.mark.parametrize("target, device_name", TARGET_DEVICES)
@pytest.mark.parametrize("case", params(CASES))
def test_elementwise(case: Case, target: str, device_name: str) -> None:
    run_case(case, target, device_name)
