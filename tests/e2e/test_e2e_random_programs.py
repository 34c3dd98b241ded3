"""Random programs mixing every kind of op, so fusion meets shapes and sharing it was not
hand-written for. Deterministic: each seed builds the same program every run."""

from __future__ import annotations

import numpy as np
import pytest
from e2e_support import TARGET_DEVICES, Case, data, params, run_case

from hal_core.ir import ops as O

UNARY = ("exp", "tanh", "sigmoid", "neg", "abs", "relu", "floor")
BINARY = ("add", "sub", "mul", "maximum", "minimum")


def _program(seed: int):
    def build(*args):
        g = np.random.default_rng(seed)
        pool = list(args)
        for _ in range(int(g.integers(4, 9))):
            x = pool[int(g.integers(len(pool)))]
            kind = g.choice(["unary", "binary", "binary", "reduce", "shape", "matmul",
                             "softmax", "concat", "pad", "select"])
            if kind == "unary":
                y = getattr(O, str(g.choice(UNARY)))(x)
            elif kind == "binary":
                others = [p for p in pool if _broadcastable(p.shape, x.shape)]
                other = others[int(g.integers(len(others)))]
                y = getattr(O, str(g.choice(BINARY)))(x, other)
            elif kind == "select":
                y = O.where(x > 0.0, x, x * 0.5)
            elif kind == "reduce" and x.ndim:
                axis = int(g.integers(x.ndim))
                fn = getattr(O, str(g.choice(["sum", "max", "mean", "min"])))
                y = fn(x, axis=axis, keepdims=bool(g.integers(2)))
            elif kind == "shape" and x.ndim >= 2:
                y = O.transpose(x, tuple(reversed(range(x.ndim))))
                if g.integers(2):
                    y = O.slice(y, (0,) * y.ndim, y.shape, (1,) * (y.ndim - 1) + (2,))
            elif kind == "matmul" and x.ndim == 2:
                y = O.matmul(x, x, transpose_b=True)
            elif kind == "softmax" and x.ndim:
                y = O.softmax(x, -1)
            elif kind == "concat" and x.ndim:
                y = O.concat([x, O.exp(x)], x.ndim - 1)
            elif kind == "pad" and x.ndim:
                y = O.pad(x, (1,) + (0,) * (x.ndim - 1), (0,) * x.ndim, -1.0)
            else:
                y = O.reshape(x, (x.size,))
            pool.append(y)
        picks = g.choice(len(pool) - len(args), size=min(2, len(pool) - len(args)),
                         replace=False)
        return tuple(pool[len(args) + int(i)] for i in sorted(picks))
    return build


def _broadcastable(a, b) -> bool:
    return all(x == y or 1 in (x, y) for x, y in zip(reversed(a), reversed(b)))


CASES = [Case(f"random-{seed}", _program(seed),
              (data((3, 4), seed=seed), data((4,), seed=seed + 1), data((3, 1), seed=seed + 2)),
              rtol=1e-4, atol=1e-5) for seed in range(40)]


@pytest.mark.parametrize("target, device_name", TARGET_DEVICES)
@pytest.mark.parametrize("case", params(CASES))
def test_random_programs(case: Case, target: str, device_name: str) -> None:
    run_case(case, target, device_name)
