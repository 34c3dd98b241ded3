"""Small whole programs (a CNN, attention, shared intermediates) end to end."""

from __future__ import annotations

import numpy as np
import pytest
from e2e_support import TARGET_DEVICES, Case, data, params, run_case

from hal_core.ir import ops as O


def _cnn(x, w1, b1, w2, fc):
    h = O.relu(O.conv2d(x, w1, b1, padding=1))
    h = O.max_pool2d(h, 2, 2)
    h = O.relu(O.conv2d(h, w2, strides=2, groups=2))
    h = O.global_avg_pool2d(h)
    logits = O.matmul(O.reshape(h, (2, 4)), fc)
    return O.log_softmax(logits), O.argmax(logits, -1)


def _attention(q, k, v):
    scores = O.matmul(q, k, transpose_b=True) * (1.0 / np.sqrt(8.0))
    return O.matmul(O.softmax(scores, -1), v)


def _np_attention(q, k, v):
    s = q @ np.swapaxes(k, -1, -2) / np.sqrt(8.0)
    s = np.exp(s - s.max(-1, keepdims=True))
    return (s / s.sum(-1, keepdims=True)) @ v


def _diamond(x):
    a = O.matmul(x, x)
    b = O.matmul(a, x)
    c = O.matmul(a, a)
    return O.concat([O.pad(b, (1, 0), (0, 0)), O.pad(c, (0, 0), (1, 0))], 1)


def _many_transients(x):
    ys = [O.matmul(x, x) * 0.1]
    for _ in range(5):
        ys.append(O.matmul(ys[-1], x) + ys[0])
    return ys[-1], ys[2]


CASES = [
    Case("cnn", _cnn, (data((2, 2, 8, 8), seed=400), data((4, 2, 3, 3), seed=401),
                       data((4,), seed=402), data((4, 2, 3, 3), seed=403),
                       data((4, 5), seed=404)), rtol=1e-4, atol=1e-4),
    Case("attention", _attention, (data((2, 4, 8), seed=405), data((2, 6, 8), seed=406),
                                   data((2, 6, 3), seed=407)), _np_attention, rtol=1e-4,
         atol=1e-5),
    Case("diamond", _diamond, (data((3, 3), seed=408),), rtol=1e-5, atol=1e-4),
    Case("transients", _many_transients, (data((4, 4), seed=409, lo=-1, hi=1),), rtol=1e-4,
         atol=1e-5),
    Case("reshape-chain", lambda x: O.reshape(O.matmul(O.reshape(x, (2, 6)),
                                                       O.reshape(x, (6, 2))), (4,)),
         (data((3, 4), seed=410),), lambda x: (x.reshape(2, 6) @ x.reshape(6, 2)).reshape(4)),
]


@pytest.mark.parametrize("target, device_name", TARGET_DEVICES)
@pytest.mark.parametrize("case", params(CASES))
def test_programs(case: Case, target: str, device_name: str) -> None:
    run_case(case, target, device_name)
