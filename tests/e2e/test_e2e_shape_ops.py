"""transpose, reshape, expand, concat, slice, pad, gather and constants end to end."""

from __future__ import annotations

import numpy as np
import pytest
from e2e_support import TARGET_DEVICES, Case, data, params, run_case

from hal_core.ir import ops as O

CASES: list[Case] = []

for dt in ("float32", "int8", "bool", "float64"):
    x = data((2, 3, 4), dt, 200, -9, 9)
    for perm in ((0, 1, 2), (2, 0, 1), (1, 0, 2), (2, 1, 0)):
        CASES.append(Case(f"transpose-{dt}-{''.join(map(str, perm))}",
                          lambda t, p=perm: O.transpose(t, p), (x,),
                          lambda t, p=perm: np.transpose(t, p), ops=("transpose",)))
CASES.append(Case("transpose-strided", lambda t: O.transpose(t, (1, 0)),
                  (data((6, 4), seed=201)[::3],), lambda t: t.T, ops=("transpose",)))

for src, dst in (((2, 3, 4), (6, 4)), ((6,), (1, 6, 1)), ((4, 1, 3), (12,)), ((0, 3), (3, 0)),
                 ((), (1, 1))):
    CASES.append(Case(f"reshape-{src}-{dst}".replace(" ", ""),
                      lambda t, s=dst: O.reshape(t, s), (data(src, seed=202),),
                      lambda t, s=dst: t.reshape(s), ops=("reshape",)))
CASES.append(Case("reshape-of-computed", lambda t: O.reshape(t * 2.0, (3, 4)) + 1.0,
                  (data((2, 6), seed=203),), lambda t: (t * 2).reshape(3, 4) + 1,
                  ops=("reshape",)))

for src, dst in (((3, 1), (3, 4)), ((4,), (2, 3, 4)), ((1, 1), (5, 6)), ((), (2, 2)),
                 ((2, 1, 3), (2, 4, 3)), ((1, 3), (0, 3))):
    for dt in ("float32", "int32", "bool"):
        CASES.append(Case(f"expand-{dt}-{src}-{dst}".replace(" ", ""),
                          lambda t, s=dst: O.broadcast_to(t, s), (data(src, dt, 204),),
                          lambda t, s=dst: np.broadcast_to(t, s), ops=("expand",)))

for dt in ("float32", "int64", "bool", "float16"):
    CASES.append(Case(f"concat-{dt}-axis0", lambda a, b: O.concat([a, b], 0),
                      (data((2, 3), dt, 205), data((4, 3), dt, 206)),
                      lambda a, b: np.concatenate([a, b], 0), ops=("concat",)))
CASES += [
    Case("concat-axis1-three", lambda a, b, c: O.concat([a, b, c], 1),
         (data((2, 1, 3), seed=207), data((2, 4, 3), seed=208), data((2, 2, 3), seed=209)),
         lambda a, b, c: np.concatenate([a, b, c], 1), ops=("concat",)),
    Case("concat-negative-axis-empty-part", lambda a, b: O.concat([a, b], -1),
         (data((3, 0), seed=210), data((3, 2), seed=211)),
         lambda a, b: np.concatenate([a, b], -1), ops=("concat",)),
    Case("concat-same-input", lambda a: O.concat([a, a * 2.0], 0), (data((2, 2), seed=212),),
         lambda a: np.concatenate([a, a * 2], 0), ops=("concat",)),
    Case("concat-strided", lambda a, b: O.concat([a, b], 1),
         (data((3, 8), seed=213)[:, ::4], data((6, 1), seed=214)[::2]),
         lambda a, b: np.concatenate([a, b], 1), ops=("concat",)),
]

SLICES = [((6, 5), (1, 0), (5, 5), (2, 1)), ((6, 5), (-1, 4), (-7, -6), (-1, -2)),
          ((4, 4), (0, 0), (100, 4), (3, 3)), ((5,), (3,), (1,), (1,)),
          ((3, 4, 5), (0, 1, 4), (3, 3, 0), (1, 1, -2))]
for i, (shape, starts, ends, steps) in enumerate(SLICES):
    for dt in ("float32", "int16"):
        CASES.append(Case(f"slice-{dt}-{i}", lambda t, s=starts, e=ends, st=steps:
                          O.slice(t, s, e, st), (data(shape, dt, 215 + i),),
                          lambda t, s=starts, e=ends, st=steps:
                          t[tuple(slice(*a) for a in zip(s, e, st))], ops=("slice",)))

for i, (shape, low, high, value) in enumerate(
        (((2, 3), (1, 0), (0, 2), 0.0), ((3,), (2,), (3,), -1.5), ((1, 2, 2), (0, 1, 1), (1, 0, 2), 7.0),
         ((0, 2), (1, 1), (1, 0), 3.0), ((2, 2), (0, 0), (0, 0), 5.0))):
    for dt in ("float32", "int32", "uint8", "float16"):
        CASES.append(Case(f"pad-{dt}-{i}", lambda t, lo=low, hi=high, v=value:
                          O.pad(t, lo, hi, v), (data(shape, dt, 220 + i, 0, 9),), ops=("pad",)))

for dt in ("float32", "int8"):
    CASES.append(Case(f"gather-{dt}-axis0", lambda t, ix: O.gather(t, ix, 0),
                      (data((5, 3), dt, 230), np.array([4, 0, -1, 2], np.int64)),
                      lambda t, ix: np.take(t, ix, 0), ops=("gather",)))
CASES += [
    Case("gather-axis1-2d-indices", lambda t, ix: O.gather(t, ix, 1),
         (data((2, 4, 3), seed=231), np.array([[0, 3], [1, 1]], np.int32)),
         lambda t, ix: np.take(t, ix, 1), ops=("gather",)),
    Case("gather-scalar-index", lambda t, ix: O.gather(t, ix, -1),
         (data((3, 4), seed=232), np.array(2, np.int64)),
         lambda t, ix: np.take(t, ix, -1), ops=("gather",)),
    Case("gather-const-indices", lambda t: O.gather(t, [1, 1, 0], 0),
         (data((2, 3), seed=233),), lambda t: np.take(t, [1, 1, 0], 0), ops=("gather",)),
    Case("gather-u8-indices", lambda t, ix: O.gather(t, ix, 0),
         (data((4, 2), seed=234), np.array([3, 0], np.uint8)), ops=("gather",)),
]

DENSE = np.arange(12, dtype=np.float32).reshape(3, 4)
CASES += [
    Case("constant-dense", lambda t: t + t.fb.constant(DENSE), (data((3, 4), seed=240),),
         lambda t: t + DENSE, ops=("constant", "add")),
    Case("constant-returned", lambda t: (t, t.fb.constant(DENSE)), (data((2,), seed=241),),
         ops=("constant",)),
    Case("constant-splat-returned", lambda t: (t.fb.constant(np.full((2, 3), 7, np.int32)),),
         (data((1,), seed=242),), ops=("constant",)),
    Case("constant-folded-chain", lambda t: t * (t.fb.constant(DENSE) * 2.0 + 1.0).sum(0),
         (data((4,), seed=243),), lambda t: t * (DENSE * 2 + 1).sum(0), ops=("constant",),
         dispatches=1),
    Case("special-float-constants",
         lambda x: O.where(x > 0.0, O.minimum(x, x.fb.constant(np.float32(np.inf))),
                           x.fb.constant(np.float32(np.nan))) + x.fb.constant(np.float32(-1)),
         (data((6,), seed=246),), ops=("constant", "select")),
    Case("int64-extreme-constants",
         lambda x: O.maximum(x, x.fb.constant(np.int64(-2**63))) + x.fb.constant(np.int64(2**62)),
         (data((4,), "int64", 247),), ops=("constant",)),
    Case("uint64-large-constant", lambda x: x * x.fb.constant(np.uint64(2**63)),
         (data((4,), "uint64", 248, 0, 5),), ops=("constant",)),
    Case("bool-splat-returned", lambda x: (x, x.fb.constant(np.ones((2, 2), bool))),
         (data((1,), seed=249),), ops=("constant",)),
    Case("splat-into-matmul",
         lambda x: O.matmul(x, O.broadcast_to(x.fb.constant(np.float32(0.5)), (3, 2))),
         (data((2, 3), seed=250),), lambda x: x @ np.full((3, 2), 0.5), dispatches=1),
    # Bigger than SPLAT_BYTES: a splat constant of the module, filled at load, no kernel.
    Case("big-splat-into-matmul",
         lambda x: O.matmul(x, O.broadcast_to(x.fb.constant(np.float32(0.25)), (3, 2048))),
         (data((2, 3), seed=251),), lambda x: x @ np.full((3, 2048), 0.25), dispatches=1),
    Case("big-splat-returned", lambda x: (x + 1.0, x.fb.constant(np.full((40, 50), 3, np.int32))),
         (data((2,), seed=252),), lambda x: (x + 1, np.full((40, 50), 3, np.int32)),
         ops=("constant", "add"), dispatches=1),
    Case("argument-returned-twice", lambda t: (t, t, t + 1.0), (data((3,), seed=244),),
         lambda t: (t, t, t + 1)),
    Case("result-returned-twice", lambda t: (O.exp(t),) * 2,
         (data((3,), seed=245),), lambda t: (np.exp(t), np.exp(t))),
]


@pytest.mark.parametrize("target, device_name", TARGET_DEVICES)
@pytest.mark.parametrize("case", params(CASES))
def test_shape_ops(case: Case, target: str, device_name: str) -> None:
    run_case(case, target, device_name)
