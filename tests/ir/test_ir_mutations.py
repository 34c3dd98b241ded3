"""Deterministic mutations of valid programs: every outcome is a program or a hal error.

(The property-based fuzzing with hypothesis lives elsewhere; this is a fixed-seed smoke check
that also runs the reference evaluator on whatever still parses, so that type inference and
evaluation agree on every shape the mutations reach.)
"""

from __future__ import annotations

import random
import re

import numpy as np
import pytest
from ir_cases import CASES
from test_ir_ops import build
from test_ir_text import CANONICAL

from hal_core import ir
from hal_core.errors import HalError


def _short(text: str) -> str:
    """Drop signatures so that the parser infers types from the mutated attributes."""
    text = re.sub(r" : \([^\n]*\) -> tensor<[^>]*>", "", text)
    text = re.sub(r"-> \([^{]*\) \{|-> tensor<[^>]*> \{", "{", text)
    return re.sub(r"return (%\w+) : .*", r"return \1", text)


TEXTS = [str(build(c)) for c in CASES]
SHORT = [_short(t) for t in TEXTS]
TOKENS = list("%@{}[]()<>,:=-x0123456789. \n\"") + [
    "tensor", "dense", "f32", "i1", "inf", "nan", "true", "0x", "func.func", "return", "add"]


def _check(text: str, evaluate: bool) -> bool:
    try:
        m = ir.parse(text)
    except HalError:
        return False
    printed = str(m)
    assert ir.parse(printed) == m and str(ir.parse(printed)) == printed
    if evaluate and "main" in m:
        f = m["main"]
        if sum(a.type.size for a in f.args) <= 10**5:
            rng = np.random.default_rng(0)
            ins = [(rng.standard_normal(a.type.shape) * 3).astype(a.type.numpy_dtype)
                   for a in f.args]
            try:
                outs = ir.evaluate(f, *ins)
            except HalError as e:
                assert "reference evaluator" not in str(e)  # inference and numpy disagree
                return True
            assert [o.shape for o in outs] == [t.shape for t in f.result_types]
    return True


@pytest.mark.parametrize("seed", range(4))
def test_digit_and_type_mutations(seed: int) -> None:
    rng = random.Random(seed)
    parsed = 0
    for _ in range(400):
        t = rng.choice(SHORT)
        digits = [m.start() for m in re.finditer(r"\d", t)]
        for _ in range(rng.randint(1, 3)):
            k = rng.choice(digits)
            t = t[:k] + rng.choice("0123456789") + t[k + 1:]
        if rng.random() < 0.3:
            t = t.replace("f32", rng.choice(["i32", "f16", "i1", "u8", "f64"]), 2)
        parsed += _check(t, evaluate=True)
    assert parsed > 50  # the mutations must reach the verifier and evaluator, not only errors


@pytest.mark.parametrize("seed", range(4))
def test_character_mutations_and_truncations(seed: int) -> None:
    rng = random.Random(100 + seed)
    for _ in range(500):
        t = rng.choice(TEXTS + [CANONICAL])
        for _ in range(rng.randint(1, 4)):
            k = rng.randrange(len(t) + 1)
            r = rng.random()
            if r < 0.3:
                t = t[:k] + t[k + rng.randint(1, 5):]
            elif r < 0.7:
                t = t[:k] + rng.choice(TOKENS) + t[k:]
            elif r < 0.8:
                t = t[:k]
            else:
                j = rng.randrange(len(t) + 1)
                t = t[:k] + t[j:j + rng.randint(1, 20)] + t[k:]
        _check(t, evaluate=False)
