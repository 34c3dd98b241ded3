"""The suite covers every op of the tensor IR."""

from __future__ import annotations

import test_e2e_elementwise as test_elementwise
import test_e2e_fusion as test_fusion
import test_e2e_linalg as test_linalg
import test_e2e_reductions as test_reductions
import test_e2e_shape_ops as test_shape_ops

from hal_core.ir import OPS


def test_every_ir_op_has_cases() -> None:
    cases = (test_elementwise.CASES + test_reductions.CASES + test_linalg.CASES
             + test_shape_ops.CASES + test_fusion.CASES)
    covered = {op for case in cases for op in case.ops}
    # A case's IR is the ground truth: count ops that really appear in the built programs.
    built = {op.name for case in cases for op in case.function().functions[0].body}
    missing = sorted(set(OPS) - (covered & built))
    assert not missing, f"no end-to-end case exercises {missing}"
