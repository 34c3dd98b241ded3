"""kernel_ir.validate: each inconsistency is a CompileError naming the kernel and the problem."""

from __future__ import annotations

import numpy as np
import pytest
from harness import ident, operand

from hal_core.compiler import kernel_ir as K
from hal_core.errors import CompileError

F = "float32"


def add_kernel(**changes):
    fields = {"name": "k", "iteration_space": (4, 3), "iterator_types": ("parallel", "parallel"),
                  "inputs": (ident(operand(0, (4, 3), F)),), "outputs": (ident(operand(1, (4, 3), F)),),
                  "body": (K.ScalarOp("add", (K.Input(0), K.Const(1.0, F)), F),),
                  "yields": (K.Result(0),)}
    fields.update(changes)
    return K.GenericKernel(**fields)


def test_valid_kernel_passes():
    K.validate(add_kernel())
    K.validate(add_kernel(body=(K.ScalarOp("add", (K.Input(0), K.Const(np.float32(1), F)),
                                           F),)))


@pytest.mark.parametrize("changes,message", [
    ({"iterator_types": ("parallel",)}, "iterator_types"),
    ({"inputs": (ident(operand(0, (3, 3), F)),)}, "input 0: dim 0 is indexed in \\[0, 3\\]"),
    ({"inputs": (K.MappedOperand(operand(0, (4, 3), F), K.IndexingMap.identity(3)),)},
     "3 dims, the iteration space has 2"),
    ({"inputs": (K.MappedOperand(operand(0, (4,), F), K.IndexingMap.identity(2)),)},
     "2 results, operand has rank 1"),
    ({"body": (K.ScalarOp("frob", (K.Input(0),), F),)}, "unknown opcode"),
    ({"body": (K.ScalarOp("add", (K.Input(0),), F),)}, "takes 2 arguments"),
    ({"body": (K.ScalarOp("add", (K.Input(0), K.Const(1, "int32")), F),)}, "insert a cast"),
    ({"body": (K.ScalarOp("add", (K.Input(0), K.Result(0)), F),)}, "before it is defined"),
    ({"body": (K.ScalarOp("add", (K.Input(2), K.Input(0)), F),)}, "Input\\(2\\)"),
    ({"body": (K.ScalarOp("cmp_lt", (K.Input(0), K.Input(0)), F),)}, "into bool"),
    ({"body": (K.ScalarOp("add", (K.Input(0), K.Acc(0)), F),)}, "Acc\\(0\\)"),
    ({"body": (K.ScalarOp("cast", (K.Input(0),), "int8"),)}, "outputs need"),
    ({"body": (K.ScalarOp("add", (K.Input(0), K.Const(300, "int8")), F),)},
     "not representable"),
    ({"combiners": ("sum",)}, "no dim is a reduction"),
    ({"iterator_types": ("parallel", "reduction")}, "combiner"),
    ({"outputs": (ident(operand(1, (4, 3), "complex64")),)}, "unknown dtype"),
])
def test_generic_errors(changes, message):
    with pytest.raises(CompileError, match=message) as info:
        K.validate(add_kernel(**changes))
    assert "kernel 'k'" in str(info.value)


def test_float_only_and_bool_rules():
    x = ident(operand(0, (4,), "int32"))
    with pytest.raises(CompileError, match="needs a float dtype"):
        K.validate(K.GenericKernel("e", (4,), ("parallel",), (x,),
                                   (ident(operand(1, (4,), "int32")),),
                                   (K.ScalarOp("exp", (K.Input(0),), "int32"),), (K.Result(0),)))


def test_reduction_output_may_not_depend_on_reduction_dim():
    k = add_kernel(iterator_types=("parallel", "reduction"), combiners=("sum",))
    with pytest.raises(CompileError, match="depends on a reduction dim"):
        K.validate(k)


@pytest.mark.parametrize("kernel,message", [
    (K.MatmulKernel("m", operand(0, (4, 5), F), operand(1, (6, 3), F), operand(2, (4, 3), F)),
     "contraction sizes differ"),
    (K.MatmulKernel("m", operand(0, (2, 4, 5), F), operand(1, (3, 5, 3), F),
                    operand(2, (2, 4, 3), F)), "do not broadcast"),
    (K.Conv2dKernel("c", operand(0, (1, 3, 8, 8), F), operand(1, (4, 3, 3, 3), F),
                    operand(2, (1, 4, 8, 8), F)), "expected \\(1, 4, 6, 6\\)"),
    (K.Conv2dKernel("c", operand(0, (1, 3, 8, 8), F), operand(1, (4, 1, 3, 3), F),
                    operand(2, (1, 4, 6, 6), F), groups=2), "groups=2"),
    (K.Pool2dKernel("p", operand(0, (1, 1, 5, 5), F), operand(1, (1, 1, 4, 4), F), "max",
                    (2, 2), (2, 2)), "expected 2 \\(floor\\) or 3"),
    (K.ArgReduceKernel("a", operand(0, (3, 4), F), operand(1, (3,), "float32"), 1),
     "int32/int64"),
    (K.GatherKernel("g", operand(0, (5, 6), F), operand(1, (2,), "int32"),
                    operand(2, (5, 3), F), 1), "expected \\(5, 2\\)"),
    (K.SoftmaxKernel("s", operand(0, (3, 4), "int32"), operand(1, (3, 4), "int32"), 1),
     "float"),
])
def test_named_errors(kernel, message):
    with pytest.raises(CompileError, match=message):
        K.validate(kernel)


def test_executable_needs_kernels_and_binding_count():
    with pytest.raises(CompileError, match="no kernels"):
        K.validate_executable(K.KernelExecutable("e", ()))
    k = K.MatmulKernel("m", operand(0, (4, 5), F), operand(3, (5, 3), F), operand(1, (4, 3), F))
    assert K.binding_count(k) == 4
    assert [w for _, w in K.kernel_operands(k)] == [False, False, True]


def test_const_equality_keeps_the_sign_of_zero():
    # kernels are CSE'd and deduplicated by equality; 1/x tells 0.0 and -0.0 apart
    assert K.Const(0.0, F) != K.Const(-0.0, F)
    def plus(c):
        return add_kernel(body=(K.ScalarOp("add", (K.Input(0), K.Const(c, F)), F),))
    assert len({plus(0.0), plus(-0.0), plus(0.0)}) == 2
    assert K.Const(1.0, F) == K.Const(np.float32(1), F)
    assert hash(K.Const(1.0, F)) == hash(K.Const(np.float32(1), F))
