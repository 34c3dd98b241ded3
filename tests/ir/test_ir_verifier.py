"""The verifier and build-time checks: errors name the op, operand, expectation and finding."""

from __future__ import annotations

import numpy as np
import pytest

from hal_core import ir
from hal_core.errors import UsageError, VerificationError
from hal_core.ir import Function, Module, Operation, TensorType, Value


def T(*shape: int, dtype: str = "f32") -> TensorType:
    return TensorType(shape, dtype)


A = Value("a", T(2, 3))
B = Value("b", T(3, 4))


def fn(*body: Operation, args: tuple[Value, ...] = (A, B), results: tuple[Value, ...] | None = None
       ) -> Function:
    return Function("main", args, body, results if results is not None else (body[-1].result,))


def test_a_hand_built_function_verifies() -> None:
    op = Operation("matmul", (A, B), Value("0", T(2, 4)),
                   {"transpose_a": False, "transpose_b": False})
    ir.verify_module(Module((fn(op),)))


def test_wrong_result_type_is_reported_with_expected_and_found() -> None:
    op = Operation("matmul", (A, B), Value("0", T(2, 3)),
                   {"transpose_a": False, "transpose_b": False})
    with pytest.raises(VerificationError) as e:
        ir.verify_function(fn(op))
    msg = str(e.value)
    assert "op 'matmul' (result %0)" in msg and "in @main" in msg
    assert "expected tensor<2x4xf32>" in msg and "found tensor<2x3xf32>" in msg


def test_contraction_mismatch_names_the_operand() -> None:
    op = Operation("matmul", (A, A), Value("0", T(2, 2)),
                   {"transpose_a": False, "transpose_b": False})
    with pytest.raises(VerificationError, match=r"operand #1 \(rhs\) %a: contraction dimension"
                                                r" mismatch: lhs tensor<2x3xf32> gives K=3"):
        ir.verify_function(fn(op))


def test_use_before_definition_and_redefinition() -> None:
    ghost = Value("ghost", T(2, 3))
    op = Operation("exp", (ghost,), Value("0", T(2, 3)))
    with pytest.raises(VerificationError, match=r"operand #0 %ghost .* is not defined before"):
        ir.verify_function(fn(op))
    op2 = Operation("exp", (A,), Value("a", T(2, 3)))
    with pytest.raises(VerificationError, match=r"value %a is defined twice"):
        ir.verify_function(fn(op2))


def test_operand_type_must_match_its_definition() -> None:
    liar = Value("a", T(2, 3, dtype="f16"))
    op = Operation("exp", (liar,), Value("0", T(2, 3, dtype="f16")))
    with pytest.raises(VerificationError, match=r"%a \(tensor<2x3xf16>\) has type"
                                                r" tensor<2x3xf32> where it is defined"):
        ir.verify_function(fn(op))


def test_unknown_op_and_missing_or_unknown_attributes() -> None:
    with pytest.raises(VerificationError, match=r"unknown op 'sofmax'; did you mean 'softmax'"):
        ir.verify_function(fn(Operation("sofmax", (A,), Value("0", T(2, 3)))))
    with pytest.raises(VerificationError, match=r"missing required attribute 'axes'"):
        ir.verify_function(fn(Operation("reduce_sum", (A,), Value("0", T()))))
    with pytest.raises(VerificationError, match=r"attributes \['axis'\] are missing"):
        ir.verify_function(fn(Operation("softmax", (A,), Value("0", T(2, 3)))))
    with pytest.raises(VerificationError, match=r"unknown attribute 'keep_dims' .*did you mean"
                                                r" 'keepdims'"):
        ir.verify_function(fn(Operation("reduce_sum", (A,), Value("0", T()),
                                        {"axes": (0, 1), "keep_dims": True})))


def test_undefined_result_and_duplicate_functions() -> None:
    op = Operation("exp", (A,), Value("0", T(2, 3)))
    with pytest.raises(VerificationError, match=r"returned value #0 %9"):
        ir.verify_function(fn(op, results=(Value("9", T(2, 3)),)))
    f = fn(op)
    with pytest.raises(VerificationError, match=r"function @main is defined twice"):
        ir.verify_module(Module((f, f)))


def _build_error(build) -> str:
    b = ir.Builder()
    with pytest.raises(VerificationError) as e, b.function("main", [
            ("x", (1, 4, 8, 8), "f32"), ("w", (6, 3, 3, 3), "f32"), ("h", (4,), "f16"),
            ("i", (2,), "f32"), ("m", (4,), "i32")]) as f:
        build(*f.args)
    return str(e.value)


@pytest.mark.parametrize("build, words", [
    (lambda x, w, h, i, m: ir.ops.conv2d(x, w),
     ["op 'conv2d'", "operand #1 (weight) %w", "expects 3 input channels", "has 4"]),
    (lambda x, w, h, i, m: ir.ops.conv2d(x, w, groups=3),
     ["attribute 'groups' = 3 must be >= 1 and divide the input channels (4)"]),
    (lambda x, w, h, i, m: x[0, 0, 0, :4] + h,
     ["op 'add'", "operand #1 (rhs) %h", "expected element type f32", "found f16"]),
    (lambda x, w, h, i, m: x.sum(axis=4),
     ["op 'reduce_sum'", "attribute 'axes' must be in [-4, 4), found 4"]),
    (lambda x, w, h, i, m: m.exp(), ["op 'exp'", "operand #0 (operand) %m",
                                     "expected a float element type, found i32"]),
    (lambda x, w, h, i, m: ir.ops.gather(h, i), ["operand #1 (indices) %i",
                                                 "expected an integer (indices) element type"]),
    (lambda x, w, h, i, m: ir.ops.where(h, h, h), ["op 'select'", "operand #0 (condition)",
                                                   "expected an i1 (the condition)"]),
    (lambda x, w, h, i, m: ir.ops.concat([h, h, h.reshape(2, 2)]),
     ["op 'concat'", "operand #2 (inputs)", "expected shape (4,) except along axis 0"]),
    (lambda x, w, h, i, m: x.transpose(0, 1, 2, 2), ["attribute 'perm' must be a permutation"]),
    (lambda x, w, h, i, m: x.reshape(3, -1), ["cannot reshape tensor<1x4x8x8xf32> to [3, -1]"]),
    (lambda x, w, h, i, m: f_op(x, "reshape", shape=(3, 5)),
     ["attribute 'shape' [3, 5] must be non-negative with 256 elements"]),
    (lambda x, w, h, i, m: ir.ops.max_pool2d(x, 2, padding=2),
     ["attribute 'padding' [2, 2, 2, 2] must be smaller than the kernel [2, 2]"]),
    (lambda x, w, h, i, m: ir.ops.slice(h, [0], [4], [0]), ["'steps' must not contain 0"]),
    (lambda x, w, h, i, m: h.broadcast_to((4, 3)), ["cannot broadcast tensor<4xf16> to shape"]),
    (lambda x, w, h, i, m: m + m[:2], ["operand #1 (rhs) %0", "shape (2,) cannot be broadcast with (4,)"]),
    (lambda x, w, h, i, m: m + 2.5, ["cannot use 2.5 with a i32 tensor"]),
    (lambda x, w, h, i, m: ir.ops.conv2d(x[:, :3], w, dilations=(9, 1)),
     ["the window (kernel [3, 3], dilations [9, 1]) is larger than the padded input"]),
    (lambda x, w, h, i, m: ir.ops.pad(h, [1], [-1]), ["'high' values must be >= 0"]),
    (lambda x, w, h, i, m: ir.ops.matmul(h, h), ["expected a tensor of rank >= 2"]),
    (lambda x, w, h, i, m: f_op(x, "cast", to="q8"), ["unknown element type 'q8'"]),
    (lambda x, w, h, i, m: f_op(x, "add"), ["expected 2 operands (lhs, rhs), found 1"]),
])
def test_build_time_errors(build, words: list[str]) -> None:
    msg = _build_error(build)
    for w in words:
        assert w in msg, msg


def f_op(x, name: str, **attrs):
    return x.fb.op(name, x, **attrs)


def test_types_reject_bad_shapes_and_dtypes() -> None:
    with pytest.raises(VerificationError, match="dimensions must be >= 0"):
        TensorType((2, -1), "f32")
    with pytest.raises(VerificationError, match="unknown element type 'f8'"):
        TensorType((2,), "f8")
    assert TensorType((2,), "float32").dtype == "f32"
    assert TensorType((2,), "bool") == TensorType((2,), "i1")
    assert ir.numpy_dtype_name("u8") == "uint8"
    assert str(TensorType((), "i1")) == "tensor<i1>"
    assert TensorType((2, 3), "f16").byte_size == 12


def test_constant_arrays_are_read_only_copies() -> None:
    a = np.arange(3, dtype=np.float32)
    b = ir.Builder()
    with b.function("main") as f:
        f.ret(f.constant(a))
    a[0] = 99
    v = b.module()["main"].body[0].attrs["value"]
    assert v[0] == 0 and not v.flags.writeable


def test_axis_ops_reject_rank_zero() -> None:
    s = Value("s", T())
    with pytest.raises(VerificationError, match=r"operand #0 \(operand\) %s: attribute 'axis'"
                                                r" = -1 names an axis, but the operand has rank 0"):
        ir.verify_function(Function("main", (s,), (Operation("softmax", (s,), Value("0", T()),
                                                              {"axis": -1}),), ()))


def test_names_must_be_printable() -> None:
    bad = Value("my value", T(2, 3))
    op = Operation("exp", (bad,), Value("0", T(2, 3)))
    with pytest.raises(VerificationError, match="value name 'my value' cannot be written"):
        ir.verify_function(Function("main", (bad,), (op,), (op.result,)))
    with pytest.raises(VerificationError, match="function name '1main' cannot be written"):
        ir.verify_function(Function("1main", (), (), ()))
    with pytest.raises(UsageError, match="argument name 'a b'"):
        ir.FunctionBuilder("f", [("a b", (1,), "f32")])


def test_nan_and_signed_zero_attributes_round_trip() -> None:
    text = """func.func @main(%a: tensor<2xf32>) -> tensor<3xf32> {
  %0 = pad %a {low = [1], high = [0], value = nan} : (tensor<2xf32>) -> tensor<3xf32>
  %1 = clip %0 {min = -0.0, max = inf} : (tensor<3xf32>) -> tensor<3xf32>
  return %1 : tensor<3xf32>
}
"""
    m = ir.parse(text)
    assert ir.parse(str(m)) == m
    assert str(m) == text.replace(", max = inf", "")


def test_tensor_larger_than_the_module_format_allows_is_refused():
    from hal_core.errors import VerificationError
    from hal_core.ir import parse

    text = """func.func @main(%a: tensor<4xf32>) -> tensor<18446744073709551616x4xf32> {
  %0 = expand %a {shape = [18446744073709551616, 4]}
  return %0
}"""
    with pytest.raises(VerificationError, match="at most 2\\*\\*48 bytes"):
        parse(text)
