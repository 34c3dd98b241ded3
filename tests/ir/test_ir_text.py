"""The text format: canonical printing, round trips, and parse errors with line:column."""

from __future__ import annotations

import numpy as np
import pytest

from hal_core import ir
from hal_core.errors import IRParseError, VerificationError

CANONICAL = """\
func.func @main(%a: tensor<4x4xf32>, %b: tensor<4xf32>) -> tensor<4x1xf32> {
  %0 = add %a, %b : (tensor<4x4xf32>, tensor<4xf32>) -> tensor<4x4xf32>
  %1 = reduce_sum %0 {axes = [1], keepdims = true} : (tensor<4x4xf32>) -> tensor<4x1xf32>
  %c = constant dense<[[1.0], [2.5], [-3.0], [4.0]]> : tensor<4x1xf32>
  %2 = mul %1, %c : (tensor<4x1xf32>, tensor<4x1xf32>) -> tensor<4x1xf32>
  %3 = clip %2 {min = 0.0} : (tensor<4x1xf32>) -> tensor<4x1xf32>
  return %3 : tensor<4x1xf32>
}

func.func @two(%x: tensor<2x3xi1>) -> (tensor<2x3xi1>, tensor<f32>) {
  %0 = logical_not %x : (tensor<2x3xi1>) -> tensor<2x3xi1>
  %1 = constant dense<0.5> : tensor<f32>
  return %0, %1 : tensor<2x3xi1>, tensor<f32>
}

func.func @none() -> () {
  return
}
"""


def test_canonical_text_round_trips_exactly() -> None:
    m = ir.parse(CANONICAL)
    assert ir.print_module(m) == CANONICAL
    assert str(m) == CANONICAL
    assert [f.name for f in m] == ["main", "two", "none"]
    main = m["main"]
    assert [a.name for a in main.args] == ["a", "b"]
    assert main.body[1].attrs == {"axes": (1,), "keepdims": True}
    assert main.body[4].attrs == {"min": 0.0, "max": float("inf")}
    assert main.results[0].type == ir.TensorType((4, 1), "f32")
    assert main.body[0].loc is not None and (main.body[0].loc.line, main.body[0].loc.column) \
        == (2, 8)


def test_short_forms_are_accepted_and_printed_canonically() -> None:
    text = """
    // signatures may be left out; attributes in any order; `bool` spells i1
    module {
      func.func @f(%x: tensor<2x3xf32>, %m: tensor<2x3xbool>) -> tensor<2x1xf32> {
        %s = reduce_max %x {keepdims = true, axes = [-1]}
        %z = constant dense<0.0> : tensor<f32>
        %y = select %m, %x, %z
        %r = reduce_sum %y {axes = [1], keepdims = true}
        %o = add %s, %r
        return %o
      }
    }
    """
    m = ir.parse(text)
    f = m["f"]
    assert f.args[1].type.dtype == "i1"
    assert f.body[0].attrs == {"axes": (-1,), "keepdims": True}
    out = ir.print_module(m)
    assert "%s = reduce_max %x {axes = [-1], keepdims = true} :" \
           " (tensor<2x3xf32>) -> tensor<2x1xf32>" in out
    assert ir.parse(out) == m and ir.print_module(ir.parse(out)) == out


@pytest.mark.parametrize("array", [
    np.array([1.5, np.inf, -np.inf, -0.0], np.float32),
    np.array([np.nan, 1.0], np.float64),
    np.array([[1, -2], [3, 127]], np.int8),
    np.array([0, 255, 7], np.uint8),
    np.array([2**63 - 1, -2**63], np.int64),
    np.array([0.1, 1e-8, 3.3e38], np.float32),
    np.array([0.1, 65504.0], np.float16),
    np.full((2, 3), -0.0, np.float32),
    np.zeros((0, 3), np.float32),
    np.arange(1000, dtype=np.float32).reshape(10, 100) / 7,
    np.arange(600, dtype=np.int16) - 300,
    np.random.default_rng(0).random(400) < 0.5,
], ids=lambda a: f"{a.dtype}{a.shape}")
def test_constants_round_trip_bit_exactly(array: np.ndarray) -> None:
    b = ir.Builder()
    with b.function("main") as f:
        f.ret(f.constant(array))
    m = b.module()
    text = str(m)
    if array.size > 256 and len(np.unique(array)) > 1:
        assert 'dense<"0x' in text
    again = ir.parse(text)
    got = again["main"].body[0].attrs["value"]
    assert got.dtype == array.dtype and got.shape == array.shape
    assert got.tobytes() == array.tobytes()
    assert again == m and str(again) == text


def test_splat_and_full_dense_forms() -> None:
    text = """func.func @main() -> (tensor<2x2xi32>, tensor<2xi1>) {
  %0 = constant dense<3> : tensor<2x2xi32>
  %1 = constant dense<[true, false]> : tensor<2xi1>
  return %0, %1 : tensor<2x2xi32>, tensor<2xi1>
}
"""
    m = ir.parse(text)
    np.testing.assert_array_equal(m["main"].body[0].attrs["value"], np.full((2, 2), 3))
    assert str(m) == text


def _err(text: str) -> IRParseError:
    with pytest.raises(IRParseError) as info:
        ir.parse(text, source_name="prog.hal")
    return info.value


HEAD = "func.func @main(%a: tensor<4xf32>) -> tensor<4xf32> {\n"


@pytest.mark.parametrize("body, line, column, token, words", [
    ("  %0 = addd %a, %a\n  return %0\n}", 2, 8, "addd", "did you mean 'add'"),
    ("  %0 = sofmax %a\n  return %0\n}", 2, 8, "sofmax", "did you mean 'softmax'"),
    ("  %0 = add %a, %b\n  return %0\n}", 2, 16, "%b", "undefined value %b"),
    ("  %0 = reduce_sum %a {axis = [0]}\n  return %0\n}", 2, 23, "axis", "did you mean 'axes'"),
    ("  %0 = reduce_sum %a\n  return %0\n}", 2, 8, "reduce_sum", "missing required attribute"),
    ("  %0 = add %a %a\n  return %0\n}", 2, 15, "%a", "expected ',' between operands"),
    ("  %0 = exp %a : (tensor<4xf32>) tensor<4xf32>\n  return %0\n}", 2, 33, "tensor",
     "expected '->'"),
    ("  %0 = exp %a : (tensor<4xf16>) -> tensor<4xf16>\n  return %0\n}", 2, 18, "tensor",
     "operand #0 %a has type tensor<4xf32>, but the signature says tensor<4xf16>"),
    ("  %0 = exp %a\n  %0 = exp %a\n  return %0\n}", 3, 3, "%0", "defined twice"),
    ("  %0 = exp %a\n  return %0 : tensor<5xf32>\n}", 3, 15, "tensor", "return value %0"),
    ("  %0 = exp %a\n  return %0\n", 4, 1, "<end of input>", "expected '}'"),
    ("  %0 = exp %a {keepdims = tru}\n  return %0\n}", 2, 27, "tru", "expected an attribute"),
    ("  %0 = constant dense<[1.0, 2.0]> : tensor<3xf32>\n  return %0\n}", 2, 17, "dense",
     "has shape (2,)"),
    ("  %0 = constant dense<1.5> : tensor<3xi32>\n  return %0\n}", 2, 17, "dense",
     "not a valid i32"),
    ("  %0 = constant dense<300> : tensor<3xi8>\n  return %0\n}", 2, 17, "dense",
     "does not fit in i8"),
    ("  %0 = exp %a ?\n  return %0\n}", 2, 15, "?", "unexpected character"),
    ("  return %a : tensor<4xf32>\n}\nfunc.func main", 4, 11, "main",
     "expected a function name"),
])
def test_parse_errors_carry_line_column_and_token(body: str, line: int, column: int,
                                                  token: str, words: str) -> None:
    e = _err(HEAD + body)
    assert (e.line, e.column, e.token) == (line, column, token), str(e)
    assert words in str(e)
    assert str(e).startswith(f"prog.hal:{line}:{column}: ")


@pytest.mark.parametrize("text, line, column, words", [
    ("func.func @main(%a: tensor<4xq32>) -> tensor<4xf32> {", 1, 28, "element types: f16"),
    ("func.func @main(%a: tensor<4x?xf32>) -> tensor<4xf32> {", 1, 28, "static shape"),
    ("func.func @main(%a: tensor<4xf32>, %a: tensor<4xf32>) -> () {\n return\n}", 1, 36,
     "defined twice"),
    ("func.func @main(%a: tensor<4xf32>) -> tensor<4xf32> {\n  return\n}", 2, 3,
     "do not match the declared results"),
    ("funk.func @main() -> () {\n return\n}", 1, 1, "expected 'func.func'"),
    ("", None, None, None),
])
def test_more_parse_errors(text: str, line: int | None, column: int | None,
                           words: str | None) -> None:
    if line is None:
        assert ir.parse(text).functions == ()
        return
    e = _err(text)
    assert (e.line, e.column) == (line, column), str(e)
    assert words in str(e)


def test_type_errors_without_signatures_name_the_op_and_location() -> None:
    text = HEAD + "  %0 = matmul %a, %a\n  return %0\n}"
    with pytest.raises(VerificationError, match=r"prog.hal:2:8: op 'matmul': expected a"
                                                r" tensor of rank >= 2"):
        ir.parse(text, source_name="prog.hal")


def test_parse_without_verify_keeps_a_wrong_signature_for_the_verifier() -> None:
    text = HEAD + "  %0 = exp %a : (tensor<4xf32>) -> tensor<4xf16>\n  return %0 : tensor<4xf16>\n}"
    text = text.replace("-> tensor<4xf32> {", "-> tensor<4xf16> {")
    m = ir.parse(text, verify=False)
    with pytest.raises(VerificationError, match=r"<string>:2:8: in @main: op 'exp' \(result %0\):"
                                                r" result type: expected tensor<4xf32>"):
        ir.verify_module(m)


@pytest.mark.parametrize("literal", ['"0x00 01"', '"0x0G01"', '"0x001"', '"0x0001\t"'])
def test_hex_constants_must_be_whole_bytes_without_spaces(literal: str) -> None:
    text = (f"func.func @main() -> tensor<2xi8> {{\n  %0 = constant dense<{literal}> : "
            "tensor<2xi8>\n  return %0 : tensor<2xi8>\n}\n")
    with pytest.raises(IRParseError, match="hex constant must be pairs of hex digits") as info:
        ir.parse(text)
    assert info.value.line == 2


def test_a_large_hex_constant_parses_to_its_bytes() -> None:
    data = np.random.default_rng(1).integers(0, 256, 1 << 20, dtype=np.uint8)
    text = (f'func.func @main() -> tensor<{data.size}xu8> {{\n  %0 = constant dense<"0x'
            f'{data.tobytes().hex().upper()}"> : tensor<{data.size}xu8>\n'
            f"  return %0 : tensor<{data.size}xu8>\n}}\n")
    got = ir.parse(text)["main"].body[0].attrs["value"]
    assert got.tobytes() == data.tobytes()


def test_a_bad_large_hex_constant_is_reported_briefly() -> None:
    digits = "00" * 100_000 + "0G"
    text = (f'func.func @main() -> tensor<100001xi8> {{\n  %0 = constant dense<"0x{digits}">'
            " : tensor<100001xi8>\n  return %0 : tensor<100001xi8>\n}\n")
    with pytest.raises(IRParseError, match="hex constant") as info:
        ir.parse(text)
    assert len(str(info.value)) < 400
