"""The inline execution model runs the same programs (the host calls kernels directly)."""

from __future__ import annotations

import pytest
import test_e2e_fusion
import test_e2e_programs
import test_e2e_random_programs
from e2e_support import INLINE_TARGETS, TARGETS, Case, params, run_case

CASES = test_e2e_fusion.CASES + test_e2e_programs.CASES + test_e2e_random_programs.CASES[:10]


@pytest.mark.parametrize("target", INLINE_TARGETS)
@pytest.mark.parametrize("case", params(CASES))
def test_inline(case: Case, target: str) -> None:
    run_case(case, target, TARGETS[target][0], execution_model="inline")
