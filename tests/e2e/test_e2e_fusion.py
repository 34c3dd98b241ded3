"""Fused programs end to end: results and the number of dispatches the fusion produced."""

from __future__ import annotations

import numpy as np
import pytest
from e2e_support import TARGET_DEVICES, Case, data, params, run_case

from hal_core.ir import ops as O


def _layernorm(x):
    mu = O.mean(x, axis=-1, keepdims=True)
    d = x - mu
    var = O.mean(d * d, axis=-1, keepdims=True)
    return d * O.rsqrt(var + 1e-5)


def _two_uses(y):
    return y + 1.0, y * 2.0


def _np_layernorm(x):
    mu = x.mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + 1e-5)


CASES = [
    Case("chain-elementwise", lambda a, b: O.relu(O.exp(a * 2.0 + b) - 1.5),
         (data((8, 5), seed=300), data((8, 5), seed=301)),
         lambda a, b: np.maximum(np.exp(a * 2 + b) - 1.5, 0), dispatches=1),
    Case("chain-broadcasts", lambda x, bias, s: (x + bias) * s - O.broadcast_to(bias, (4, 6)),
         (data((4, 6), seed=302), data((6,), seed=303), data((4, 1), seed=304)),
         lambda x, b, s: (x + b) * s - b, dispatches=1),
    Case("chain-transpose-slice", lambda x: O.slice(O.transpose(x, (1, 0)), (0, 1), (3, 4),
                                                    (2, 1)) + 1.0,
         (data((4, 5), seed=305),), lambda x: x.T[0:3:2, 1:4] + 1, dispatches=1),
    Case("matmul-bias-relu", lambda a, w, b: O.relu(O.matmul(a, w) + b),
         (data((4, 8), seed=306), data((8, 3), seed=307), data((3,), seed=308)),
         lambda a, w, b: np.maximum(a @ w + b, 0), dispatches=1),
    Case("matmul-f16-epilogue", lambda a, w: O.matmul(a, w) * 0.5,
         (data((3, 4), "float16", 309), data((4, 2), "float16", 310)), rtol=3e-3, atol=1e-3,
         dispatches=1),
    Case("matmul-cast-not-fused", lambda a, w: O.cast(O.matmul(a, w), "int32"),
         (data((3, 4), seed=311), data((4, 2), seed=312)), dispatches=2),
    Case("matmul-two-consumers", lambda a, w: _two_uses(O.matmul(a, w)),
         (data((3, 4), seed=313), data((4, 2), seed=314)), dispatches=2),
    Case("conv-bias-relu", lambda x, w, b: O.relu(O.conv2d(x, w, b, padding=1) * 0.5),
         (data((1, 2, 5, 5), seed=315), data((3, 2, 3, 3), seed=316), data((3,), seed=317)),
         dispatches=1),
    Case("pool-then-sigmoid", lambda x: O.sigmoid(O.max_pool2d(x, 2, 2)),
         (data((1, 2, 4, 6), seed=318),), dispatches=1),
    Case("gather-then-scale", lambda t, ix: O.gather(t, ix, 0) * 3.0,
         (data((5, 2), seed=319), np.array([1, 4], np.int64)),
         lambda t, ix: np.take(t, ix, 0) * 3, dispatches=1),
    Case("softmax-then-scale", lambda x: O.softmax(x) * 2.0, (data((3, 5), seed=320),),
         dispatches=1),
    Case("reduction-prologue-epilogue", lambda x: O.sqrt(O.sum(O.exp(x), axis=1)) + 1.0,
         (data((4, 6), seed=321),), lambda x: np.sqrt(np.exp(x).sum(1)) + 1, dispatches=1),
    Case("mean-f16-epilogue", lambda x: O.mean(x, axis=0) * 2.0,
         (data((5, 3), "float16", 322),), rtol=3e-3, atol=1e-3, dispatches=1),
    Case("layernorm", _layernorm, (data((3, 8), seed=323),), _np_layernorm, rtol=1e-4,
         atol=1e-5, dispatches=3),
    Case("shared-cheap-producer", lambda x: _two_uses(O.exp(x)),
         (data((2, 3), seed=324),), lambda x: (np.exp(x) + 1, np.exp(x) * 2), dispatches=1),
    Case("pad-of-chain", lambda x: O.pad(O.exp(x), (1, 0), (0, 2), 9.0),
         (data((2, 3), seed=325),), lambda x: np.pad(np.exp(x), ((1, 0), (0, 2)),
                                                     constant_values=9), dispatches=2),
    Case("concat-of-chains", lambda a, b: O.concat([O.exp(a), b * 2.0], 1),
         (data((2, 3), seed=326), data((2, 2), seed=327)),
         lambda a, b: np.concatenate([np.exp(a), b * 2], 1), dispatches=2),
    Case("reshape-between", lambda x: O.reshape(x * 2.0, (3, 2)) + 1.0,
         (data((2, 3), seed=328),), lambda x: (x * 2).reshape(3, 2) + 1, dispatches=2),
    Case("reshape-split-fused", lambda x: O.reshape(x * 2.0, (2, 2, 3)) + 1.0,
         (data((4, 3), seed=333),), lambda x: (x * 2).reshape(2, 2, 3) + 1, dispatches=1),
    Case("reshape-split-of-transpose-slice",
         lambda x: O.exp(O.reshape(O.slice(O.transpose(x, (1, 0)), (4, 0), (0, 4), (-1, 1))
                                   - 1.0, (2, 2, 1, 2, 2))) * 0.5,
         (data((4, 6), seed=334),),
         lambda x: np.exp((x.T[4:0:-1, 0:4] - 1).reshape(2, 2, 1, 2, 2)) * 0.5, dispatches=1),
    Case("reshape-split-broadcast-consumer",
         lambda x, y: O.reshape(O.sigmoid(x), (1, 2, 3, 4)) * y,
         (data((6, 4), seed=335), data((3, 1), seed=336)),
         lambda x, y: (1 / (1 + np.exp(-x))).reshape(1, 2, 3, 4) * y, dispatches=1),
    Case("reshape-split-into-reduction", lambda x: O.sum(O.reshape(O.exp(x), (2, 3, 4)), 1),
         (data((6, 4), seed=337),), lambda x: np.exp(x).reshape(2, 3, 4).sum(1),
         dispatches=1),
    Case("reshape-split-result", lambda x: O.reshape(x + 1.0, (3, 1, 2)),
         (data((6,), seed=338),), lambda x: (x + 1).reshape(3, 1, 2), dispatches=1),
    Case("reshape-split-into-matmul",
         lambda x, w: O.matmul(O.reshape(O.relu(x), (2, 3, 4)), w),
         (data((6, 4), seed=339), data((4, 2), seed=340)),
         lambda x, w: np.maximum(x, 0).reshape(2, 3, 4) @ w, dispatches=2),
    Case("reshape-split-result-keeps-epilogue",
         lambda a, w, b: O.reshape(O.relu(O.matmul(a, w) + b), (2, 2, 3)),
         (data((4, 5), seed=344), data((5, 3), seed=345), data((3,), seed=346)),
         lambda a, w, b: np.maximum(a @ w + b, 0).reshape(2, 2, 3), dispatches=1),
    Case("reshape-split-two-uses", lambda x: _two_uses(O.reshape(O.exp(x), (2, 2, 2))),
         (data((4, 2), seed=341),),
         lambda x: (np.exp(x).reshape(2, 2, 2) + 1, np.exp(x).reshape(2, 2, 2) * 2),
         dispatches=1),
    Case("reshape-split-of-buffer-stays-alias", lambda x: O.reshape(x, (2, 3)) + 1.0,
         (data((6,), seed=342),), lambda x: x.reshape(2, 3) + 1, dispatches=1),
    Case("reshape-split-of-split", lambda x: O.reshape(O.reshape(x * 2.0, (2, 6)),
                                                       (2, 2, 3)) - 1.0,
         (data((12,), seed=347),), lambda x: (x * 2).reshape(2, 2, 3) - 1, dispatches=1),
    Case("reshape-split-then-merge", lambda x: O.reshape(O.reshape(x * 2.0, (2, 2, 3)),
                                                         (4, 3)) - 1.0,
         (data((2, 6), seed=348),), lambda x: (x * 2).reshape(4, 3) - 1, dispatches=2),
    Case("reshape-merge-not-fused", lambda x: O.reshape(x * 2.0, (6,)) + 1.0,
         (data((2, 3), seed=343),), lambda x: (x * 2).reshape(6) + 1, dispatches=2),
    Case("mlp", lambda x, w1, b1, w2: O.softmax(O.matmul(O.relu(O.matmul(x, w1) + b1), w2)),
         (data((2, 6), seed=329), data((6, 8), seed=330), data((8,), seed=331),
          data((8, 3), seed=332)), rtol=1e-4, dispatches=3),
]


@pytest.mark.parametrize("target, device_name", TARGET_DEVICES)
@pytest.mark.parametrize("case", params(CASES))
def test_fusion(case: Case, target: str, device_name: str) -> None:
    run_case(case, target, device_name)
