"""Property-based fuzzing of the text IR parser and the text importer (hypothesis).

Valid programs covering every op are mutated (truncated; characters, tokens and lines deleted,
inserted, replaced, swapped or duplicated; random unicode, huge numbers, deep bracket nesting)
and parsed with verification. Every outcome must be a Module that round-trips through the
printer, or one of the project's own errors (HalError: IRParseError, VerificationError, ...):
never another exception, a hang or a blow-up in time (the deadline catches those).
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from ir_cases import CASES
from test_ir_mutations import SHORT, TEXTS
from test_ir_text import CANONICAL

from hal_core import ir
from hal_core.errors import HalError, IRParseError
from hal_core.ir.importer import import_text

# Deterministic for CI; the deadline is generous for a loaded machine but far below what a
# quadratic or runaway parse of these inputs takes.
FUZZ = settings(
    max_examples=1000,
    deadline=timedelta(seconds=3),
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

EXTRA = [
    """\
// comments, the module wrapper, hex and splat constants, several functions
module {
  func.func @main(%x: tensor<2x3xf32>, %i: tensor<2xi64>) -> (tensor<2x3xf32>, tensor<2x3xf32>) {
    %h = constant dense<"0x0000803F000000400000404000008040000000000000C0BF"> : tensor<2x3xf32>
    %s = constant dense<-0.5> : tensor<f32>
    %0 = mul %x, %h
    %1 = add %0, %s
    %2 = gather %1, %i {axis = 0}
    %3 = transpose %2 {perm = [0, 1]}
    %4 = softmax %3 {axis = -1}
    return %4, %1 : tensor<2x3xf32>, tensor<2x3xf32>
  }
  func.func @b(%m: tensor<2x2xbool>) -> tensor<2x2xi1> {
    %t = constant dense<[[true, false], [false, true]]> : tensor<2x2xi1>
    %0 = logical_and %m, %t
    return %0
  }
}
""",
    """\
func.func @chain(%a: tensor<1x3x8x8xf32>, %w: tensor<4x3x3x3xf32>, %b: tensor<4xf32>) {
  %0 = conv2d %a, %w, %b {strides = [1, 1], padding = [1, 1, 1, 1], dilations = [1, 1], groups = 1}
  %1 = relu %0
  %2 = max_pool2d %1 {kernel = [2, 2], strides = [2, 2], ceil_mode = false}
  %3 = reshape %2 {shape = [1, 64]}
  %4 = reduce_mean %3 {axes = [1], keepdims = true}
  %5 = slice %3 {starts = [0, 60], ends = [1, 0], steps = [1, -3]}
  %6 = pad %5 {low = [0, 1], high = [0, 2], value = 0.0}
  %7 = concat %6, %4 {axis = 1}
  %8 = cast %7 {to = f16}
  %9 = clip %8 {min = -1.0, max = inf}
  return %9
}
""",
]
CORPUS = [CANONICAL, *EXTRA, *TEXTS, *SHORT]
assert len(CASES) <= len(TEXTS)

TOKENS = [
    "%",
    "@",
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    "<",
    ">",
    ",",
    ":",
    "=",
    "->",
    "-",
    "x",
    "0",
    "1",
    ".",
    " ",
    "\n",
    "\t",
    '"',
    "//",
    "0x",
    "e",
    "tensor",
    "dense",
    "module",
    "func.func",
    "return",
    "constant",
    "f32",
    "i1",
    "bool",
    "i64",
    "u8",
    "f16",
    "inf",
    "-inf",
    "nan",
    "true",
    "false",
    "%0",
    "%a",
    "@main",
    "add",
    "conv2d",
    "reduce_sum",
    "axes",
    "keepdims",
    "axis",
    "tensor<2x3xf32>",
    "tensor<f32>",
    "tensor<0xi8>",
    'dense<"0x00">',
    "\u00e9",
    "\ud800",
    "\x00",
    "\u202e",
    "\U0001f600",
    "\ufeff",
    "\r\n",
]
HUGE = [
    "9" * 30,
    "9" * 400,
    "9" * 5000,
    "-" + "9" * 25,
    "1e999",
    "-1e999",
    "1e-999",
    "18446744073709551616",
    "-9223372036854775809",
    "4294967296",
    "2147483648",
    "0" * 300,
    "1." + "5" * 500,
    "65505.0",
    "nan",
    "-0.0",
]
_TOKEN_RE = re.compile(r"%[\w.$-]+|@[\w.$]+|[\w.]+|->|\S")
_NUMBER_RE = re.compile(r"\d+")


def _tokens(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in _TOKEN_RE.finditer(text)]


@st.composite
def insertion(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["token", "text", "huge", "nest", "nest_closed"]))
    if kind == "token":
        return draw(st.sampled_from(TOKENS))
    if kind == "text":
        return draw(st.text(max_size=12))
    if kind == "huge":
        return draw(st.sampled_from(HUGE))
    depth = draw(st.sampled_from([2, 10, 64, 65, 500, 20_000]))
    opener = draw(st.sampled_from("[({<"))
    if kind == "nest":
        return opener * depth
    closer = {"[": "]", "(": ")", "{": "}", "<": ">"}[opener]
    return opener * depth + draw(st.sampled_from(["1", "1.0", "true", ""])) + closer * depth


MUTATIONS = [
    "truncate",
    "delete",
    "insert",
    "replace",
    "token_delete",
    "token_replace",
    "token_duplicate",
    "token_swap",
    "line_swap",
    "line_duplicate",
    "line_delete",
    # milder ones, which mostly keep the syntax and reach type inference and the
    # verifier: another number, element type or op name in place of one
    "number",
    "number",
    "dtype",
    "opname",
]
SMALL = ["0", "1", "2", "3", "-1", "-2", "4", "7", "64", "0.5"]
DTYPES = ["f16", "f32", "f64", "i1", "i8", "i16", "i32", "i64", "u8", "bool", "f8", "i4"]
OP_NAMES = sorted(ir.OPS)
_DTYPE_RE = re.compile(r"(?<=x)[a-z][a-z0-9]*(?=>)|(?<=<)[a-z][a-z0-9]*(?=>)|(?<== )[fiu]\d+\b")
_OPNAME_RE = re.compile(r"(?<== )[a-z_0-9]+")


def mutate(text: str, kind: str, a: int, b: int, new: str) -> str:
    """Apply one mutation; ``a`` and ``b`` pick positions, ``new`` is the text inserted."""
    n = len(text)
    if kind == "truncate":
        return text[: a % (n + 1)]
    if kind == "delete":
        k = a % (n + 1)
        return text[:k] + text[k + 1 + b % 20 :]
    if kind == "insert":
        k = a % (n + 1)
        return text[:k] + new + text[k:]
    if kind == "replace":
        k = a % (n + 1)
        return text[:k] + new + text[k + 1 + b % 8 :]
    if kind.startswith("token"):
        toks = _tokens(text)
        if not toks:
            return text + new
        s, e = toks[a % len(toks)]
        if kind == "token_delete":
            return text[:s] + text[e:]
        if kind == "token_replace":
            return text[:s] + new + text[e:]
        if kind == "token_duplicate":
            return text[:e] + " " + text[s:e] + text[e:]
        s2, e2 = toks[b % len(toks)]
        if (s2, e2) < (s, e):
            (s, e), (s2, e2) = (s2, e2), (s, e)
        if s2 < e:  # the same token
            return text
        return text[:s] + text[s2:e2] + text[e:s2] + text[s:e] + text[e2:]
    if kind.startswith("line"):
        lines = text.split("\n")
        i, j = a % len(lines), b % len(lines)
        if kind == "line_swap":
            lines[i], lines[j] = lines[j], lines[i]
        elif kind == "line_duplicate":
            lines.insert(j, lines[i])
        else:
            del lines[i]
        return "\n".join(lines)
    pattern, choices = {
        "number": (_NUMBER_RE, SMALL + HUGE),
        "dtype": (_DTYPE_RE, DTYPES),
        "opname": (_OPNAME_RE, OP_NAMES),
    }[kind]
    found = list(pattern.finditer(text))
    if not found:
        return text
    m = found[a % len(found)]
    return text[: m.start()] + choices[b % len(choices)] + text[m.end() :]


position = st.integers(min_value=0, max_value=1 << 20)
one_mutation = st.tuples(st.sampled_from(MUTATIONS), position, position, insertion())
mild_mutation = st.tuples(
    st.sampled_from(["number", "dtype", "opname"]), position, position, st.just("")
)


def parse_or_project_error(text: str) -> ir.Module | None:
    """Parse with verification; a stray exception (not a HalError) fails the test."""
    try:
        module = ir.parse(text, source_name="fuzz.mlir")
    except HalError as error:
        event(type(error).__name__)  # outcome mix: pytest --hypothesis-show-statistics
        message = str(error)
        assert message.strip()
        if isinstance(error, IRParseError):
            assert error.line >= 1 and error.column >= 1
            assert message.startswith(f"fuzz.mlir:{error.line}:{error.column}: ")
        return None
    event("parsed")
    assert isinstance(module, ir.Module)
    printed = str(module)
    again = ir.parse(printed, source_name="printed.mlir")
    assert again == module and str(again) == printed
    return module


@FUZZ
@given(
    source=st.integers(min_value=0, max_value=len(CORPUS) - 1),
    mutations=st.lists(one_mutation, min_size=1, max_size=3),
)
def test_mutated_programs(source: int, mutations) -> None:
    text = CORPUS[source]
    for kind, a, b, new in mutations:
        text = mutate(text, kind, a, b, new)
    parse_or_project_error(text)


@settings(FUZZ, max_examples=600)
@given(
    source=st.integers(min_value=0, max_value=len(SHORT) + len(EXTRA) - 1),
    mutations=st.lists(mild_mutation, min_size=1, max_size=2),
)
def test_mildly_mutated_programs(source: int, mutations) -> None:
    # Programs without signatures (types inferred) keep parsing after a number, element type
    # or op name changed, so these reach type inference and the verifier.
    text = (SHORT + EXTRA)[source]
    for kind, a, b, new in mutations:
        text = mutate(text, kind, a, b, new)
    parse_or_project_error(text)


@settings(FUZZ, max_examples=500)
@given(
    source=st.integers(min_value=0, max_value=len(CORPUS) - 1),
    cut=st.integers(min_value=0),
    tail=st.sampled_from(["", "}", "\n}\n", "]", ">", " : tensor<f32>", "\n}\n}\n"]),
)
def test_truncated_programs(source: int, cut: int, tail: str) -> None:
    text = CORPUS[source]
    parse_or_project_error(text[: cut % (len(text) + 1)] + tail)


@settings(FUZZ, max_examples=500)
@given(text=st.text(max_size=200))
def test_arbitrary_text(text: str) -> None:
    parse_or_project_error(text)


@settings(FUZZ, max_examples=700)
@given(
    source=st.integers(min_value=0, max_value=len(CORPUS) - 1),
    edits=st.lists(
        st.tuples(st.integers(min_value=0), st.binary(min_size=1, max_size=4)), max_size=4
    ),
    cut=st.none() | st.integers(min_value=0),
)
def test_importer_with_mutated_bytes(source: int, edits, cut: int | None) -> None:
    raw = bytearray(CORPUS[source].encode())
    for pos, data in edits:  # bytes such as 0xff or a lone continuation byte: invalid UTF-8
        k = pos % (len(raw) + 1)
        raw[k : k + 1] = data
    if cut is not None:
        raw = raw[: cut % (len(raw) + 1)]  # may split a multi-byte character
    try:
        module = import_text(bytes(raw))
    except HalError as error:
        assert str(error).startswith("<bytes>")
        return
    assert isinstance(module, ir.Module)


@settings(FUZZ, max_examples=300)
@given(data=st.binary(max_size=300))
def test_importer_with_arbitrary_bytes(data: bytes) -> None:
    try:
        module = import_text(data)
    except HalError:
        return
    assert isinstance(module, ir.Module)


# -- regressions the fuzzing found ---------------------------------------------------------------


def test_deeply_nested_dense_literal_is_a_parse_error() -> None:
    text = (
        "func.func @f() -> tensor<1xf32> {\n  %c = constant dense<"
        + "[" * 100_000
        + "> : tensor<1xf32>\n  return %c\n}\n"
    )
    with pytest.raises(IRParseError, match="nest"):
        ir.parse(text)
    closed = text.replace("[" * 100_000, "[" * 70 + "1.0" + "]" * 70)
    with pytest.raises(IRParseError, match="nest"):
        ir.parse(closed)


def test_a_dimension_with_thousands_of_digits_is_a_parse_error() -> None:
    text = "func.func @f(%a: tensor<" + "9" * 5000 + "xf32>) {\n  return %a\n}\n"
    with pytest.raises(IRParseError, match="dimension"):
        ir.parse(text)


def test_a_long_digit_run_before_a_letter_is_rejected_in_linear_time() -> None:
    # The number pattern used to backtrack quadratically here (minutes for this input).
    text = "func.func @f() {\n  %0 = add " + "9" * 200_000 + "x\n}\n"
    with pytest.raises(IRParseError, match="unexpected character"):
        ir.parse(text)


def test_a_constant_of_rank_above_numpys_limit_is_a_parse_error() -> None:
    shape = "1x" * 70
    for value in ("1.0", '"0x0000803F"'):
        text = (
            f"func.func @f() {{\n  %c = constant dense<{value}> : tensor<{shape}f32>\n"
            "  return %c\n}\n"
        )
        with pytest.raises(IRParseError, match="70 dims"):
            ir.parse(text)
