"""Parse the text form of the tensor IR.

Grammar (MLIR's style; ``//`` starts a comment that runs to the end of the line)::

    module     ::= function*  |  'module' '{' function* '}'
    function   ::= 'func.func' '@'NAME '(' [arg (',' arg)*] ')' ['->' results] '{'
                       op*
                       'return' [value (',' value)* [':' type (',' type)*]]
                   '}'
    arg        ::= value ':' type
    results    ::= type | '(' [type (',' type)*] ')'
    op         ::= value '=' OPNAME [value (',' value)*] [attr-dict] [':' signature]
                 | value '=' 'constant' dense ':' type
    signature  ::= '(' [type (',' type)*] ')' '->' type
    attr-dict  ::= '{' [NAME '=' attr (',' NAME '=' attr)*] '}'
    attr       ::= 'true' | 'false' | NUMBER | '[' [NUMBER (',' NUMBER)*] ']' | ELEMENT_TYPE
    dense      ::= 'dense' '<' (literal | nested-list | '"0x' HEX '"') '>'
    type       ::= 'tensor' '<' (DIM 'x')* ELEMENT_TYPE '>'      e.g. tensor<2x3xf32>, tensor<i1>
    value      ::= '%' [A-Za-z0-9_.$-]+

An op's operands stay on its line (so ``%0 = add %a %b`` is an error, not two ops). Numbers
are decimal (``-1``, ``2.5e-3``, ``inf``, ``-inf``, ``nan``); booleans ``true`` and ``false``.
A splat ``dense<v>`` fills the whole tensor; a nested list must match the shape; the hex form
holds the raw little-endian bytes. Attributes may come in any order; left-out ones take
their defaults. The signature after ``:`` is optional except for constants: without it the
result type is inferred; likewise a function without ``->`` returns what its ``return`` returns.
Example::

    func.func @main(%a: tensor<4x4xf32>, %b: tensor<4xf32>) -> tensor<4x1xf32> {
      %0 = add %a, %b : (tensor<4x4xf32>, tensor<4xf32>) -> tensor<4x4xf32>
      %1 = reduce_sum %0 {axes = [1], keepdims = true} : (tensor<4x4xf32>) -> tensor<4x1xf32>
      return %1 : tensor<4x1xf32>
    }

Errors are :class:`~hal_core.errors.IRParseError` with line, column and the offending token,
saying what was expected; :func:`parse` then runs the verifier (``verify=False`` skips it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from hal_core.errors import IRParseError, VerificationError
from hal_core.ir.module import Function, Location, Module, Operation, Value
from hal_core.ir.opdefs import (
    OPS,
    OpError,
    get_opdef,
    infer_type,
    normalize_attrs,
    unknown_op_message,
)
from hal_core.ir.types import ELEMENT_TYPES, TensorType, element_type

# Numbers are `\d+(?:\.\d*)?`, never `\d+\.?\d*`: that splits a digit run two ways and
# backtracks quadratically when a letter follows (minutes for a 200k-digit run).
_TOKEN = re.compile(r"""
    (?P<ws>[ \t\r\n]+|//[^\n]*)
  | (?P<value>%[A-Za-z0-9_.$-]+)
  | (?P<symbol>@[A-Za-z_][A-Za-z0-9_.$]*)
  | (?P<number>[-+]?(?:\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|inf|nan)(?![A-Za-z0-9_]))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<string>"[^"\n]*")
  | (?P<arrow>->)
  | (?P<punct>[(){}\[\]<>,:=])
""", re.VERBOSE)
MAX_CONSTANT_BYTES = 1 << 30
MAX_CONSTANT_RANK = 64  # numpy's limit on array dims (and on nesting in a dense literal)
_SHAPE = re.compile(r"((?:\d+x)*)([a-z][a-z0-9]*)")


@dataclass(frozen=True)
class Token:
    kind: str   # value | symbol | number | ident | string | arrow | punct | eof
    text: str
    line: int
    column: int


class _Lexer:
    def __init__(self, text: str, source: str) -> None:
        self.text, self.source = text, source
        self.pos, self.line, self.line_start = 0, 1, 0
        self._peeked: Token | None = None

    def _advance_to(self, end: int) -> None:
        chunk = self.text[self.pos:end]
        nl = chunk.count("\n")
        if nl:
            self.line += nl
            self.line_start = self.pos + chunk.rindex("\n") + 1
        self.pos = end

    def peek(self) -> Token:
        if self._peeked is None:
            self._peeked = self._scan()
        return self._peeked

    def next(self) -> Token:
        tok = self.peek()
        self._peeked = None
        return tok

    def _scan(self) -> Token:
        while True:
            col = self.pos - self.line_start + 1
            if self.pos >= len(self.text):
                return Token("eof", "<end of input>", self.line, col)
            m = _TOKEN.match(self.text, self.pos)
            if m is None:
                raise IRParseError(f"unexpected character {self.text[self.pos]!r}",
                                   line=self.line, column=col, token=self.text[self.pos],
                                   source_name=self.source)
            kind = m.lastgroup or ""
            line = self.line
            self._advance_to(m.end())
            if kind != "ws":
                return Token(kind, m.group(), line, col)

    def raw_until(self, close: str) -> Token:
        """The raw text up to ``close`` (for `2x3xf32`, which regular tokens would split)."""
        assert self._peeked is None
        end = self.text.find(close, self.pos)
        if end < 0 or "\n" in self.text[self.pos:end]:
            end = self.pos
            while end < len(self.text) and self.text[end] not in " \t\r\n>":
                end += 1
        tok = Token("raw", self.text[self.pos:end], self.line, self.pos - self.line_start + 1)
        self._advance_to(end)
        return tok


class _Parser:
    def __init__(self, text: str, source: str) -> None:
        self.lex = _Lexer(text, source)
        self.source = source
        self.last_line = 0  # line of the last value used, to tell `%a %b` from the next op

    # -- helpers ---------------------------------------------------------------------------------
    def error(self, message: str, tok: Token) -> IRParseError:
        return IRParseError(message, line=tok.line, column=tok.column, token=tok.text,
                            source_name=self.source)

    def expect(self, text: str, what: str = "") -> Token:
        tok = self.lex.next()
        if tok.text != text or tok.kind in ("string", "value"):
            raise self.error(f"expected '{text}'{what}, found {_describe(tok)}", tok)
        return tok

    def accept(self, text: str) -> bool:
        tok = self.lex.peek()
        if tok.text == text and tok.kind in ("punct", "arrow", "ident"):
            self.lex.next()
            return True
        return False

    def expect_kind(self, kind: str, what: str) -> Token:
        tok = self.lex.next()
        if tok.kind != kind:
            raise self.error(f"expected {what}, found {_describe(tok)}", tok)
        return tok

    def loc(self, tok: Token) -> Location:
        return Location(tok.line, tok.column, self.source)

    # -- grammar ---------------------------------------------------------------------------------
    def module(self) -> Module:
        functions: list[Function] = []
        wrapped = self.accept("module")
        if wrapped:
            self.expect("{", " after 'module'")
        while True:
            tok = self.lex.peek()
            if tok.kind == "eof" or (wrapped and tok.text == "}"):
                break
            functions.append(self.function())
        if wrapped:
            self.expect("}", " to close the module")
        tok = self.lex.next()
        if tok.kind != "eof":
            raise self.error(f"expected 'func.func' or the end of input, found {_describe(tok)}",
                             tok)
        return Module(tuple(functions))

    def function(self) -> Function:
        start = self.expect("func.func", " to start a function")
        name = self.expect_kind("symbol", "a function name such as @main").text[1:]
        self.expect("(", " to open the argument list")
        env: dict[str, Value] = {}
        args: list[Value] = []
        if not self.accept(")"):
            while True:
                vtok = self.expect_kind("value", "an argument such as %arg0")
                self.expect(":", " after the argument name")
                v = Value(vtok.text[1:], self.type())
                self.define(env, v, vtok)
                args.append(v)
                if self.accept(")"):
                    break
                self.expect(",", " or ')' in the argument list")
        declared: list[TensorType] | None = None  # no '->': the return says what comes back
        if self.accept("->"):
            if self.accept("("):
                declared = self.type_list(")")
            else:
                declared = [self.type()]
        self.expect("{", " to open the function body")
        body: list[Operation] = []
        while self.lex.peek().text != "return":
            if self.lex.peek().kind != "value":
                tok = self.lex.next()
                raise self.error(f"expected an op ('%name = op ...') or 'return', found"
                                 f" {_describe(tok)}", tok)
            body.append(self.operation(env))
        ret = self.lex.next()
        results = self.return_values(env)
        found = [v.type for v in results]
        if declared is not None and found != declared:
            raise self.error(f"return types ({', '.join(map(str, found))}) do not match the"
                             f" declared results ({', '.join(map(str, declared))}) of @{name}",
                             ret)
        self.expect("}", " to close the function body")
        return Function(name, tuple(args), tuple(body), tuple(results), self.loc(start))

    def return_values(self, env: dict[str, Value]) -> list[Value]:
        results: list[Value] = []
        if self.lex.peek().kind == "value":
            results.append(self.use(env))
            while self.accept(","):
                results.append(self.use(env))
        if self.accept(":"):
            for i, v in enumerate(results):  # by position: a value may be returned twice
                tok = self.lex.peek()
                t = self.type()
                if t != v.type:
                    raise self.error(f"return value %{v.name} has type {v.type}, but the"
                                     f" return says {t}", tok)
                if i < len(results) - 1:
                    self.expect(",", " between return types")
        return results

    def define(self, env: dict[str, Value], v: Value, tok: Token) -> None:
        if v.name in env:
            raise self.error(f"value %{v.name} is defined twice; SSA values are defined once",
                             tok)
        env[v.name] = v

    def use(self, env: dict[str, Value]) -> Value:
        tok = self.expect_kind("value", "a value such as %0")
        self.last_line = tok.line
        try:
            return env[tok.text[1:]]
        except KeyError:
            raise self.error(f"use of undefined value {tok.text} (values must be defined"
                             " above their use)", tok) from None

    def operation(self, env: dict[str, Value]) -> Operation:
        rtok = self.lex.next()
        self.expect("=", f" after {rtok.text}")
        ntok = self.expect_kind("ident", "an op name such as 'add'")
        if ntok.text not in OPS:
            raise self.error(unknown_op_message(ntok.text), ntok)
        opdef = get_opdef(ntok.text)
        loc = self.loc(ntok)
        if opdef.name == "constant":
            value_tok = self.lex.peek()
            raw = self.dense_literal()
            self.expect(":", " and the constant's type")
            ttok = self.lex.peek()
            t = self.type()
            array = self.build_dense(raw, t, value_tok, ttok)
            result = Value(rtok.text[1:], t)
            self.define(env, result, rtok)
            return Operation("constant", (), result, normalize_attrs(opdef, {"value": array}),
                             loc)
        operands: list[Value] = []
        if self.lex.peek().kind == "value":
            operands.append(self.use(env))
            while self.accept(","):
                operands.append(self.use(env))
        attrs_tok = self.lex.peek()
        if attrs_tok.kind == "value" and operands and attrs_tok.line == self.last_line:
            raise self.error("expected ',' between operands, or '{', ':' or the next op after"
                             " them", attrs_tok)
        raw_attrs = self.attr_dict() if attrs_tok.text == "{" else {}
        try:
            attrs = normalize_attrs(opdef, {k: v for k, (v, _) in raw_attrs.items()})
        except OpError as e:
            tok = raw_attrs[e.attr][1] if e.attr in raw_attrs else ntok
            raise self.error(f"op '{opdef.name}': {e.message}", tok) from None
        if self.accept(":"):
            self.expect("(", " to open the operand types")
            sig_tok = self.lex.peek()
            types = self.type_list(")")
            if len(types) != len(operands):
                raise self.error(f"the signature lists {len(types)} operand types for"
                                 f" {len(operands)} operands", sig_tok)
            for i, (v, t) in enumerate(zip(operands, types)):
                if v.type != t:
                    raise self.error(f"operand #{i} %{v.name} has type {v.type}, but the"
                                     f" signature says {t}", sig_tok)
            self.expect("->", " before the result type")
            result_type = self.type()
        else:
            try:
                result_type = infer_type(opdef, [v.type for v in operands], attrs)
            except OpError as e:
                raise VerificationError(f"{loc}: op '{opdef.name}': {e.message}") from None
        result = Value(rtok.text[1:], result_type)
        self.define(env, result, rtok)
        return Operation(opdef.name, tuple(operands), result, attrs, loc)

    def attr_dict(self) -> dict[str, tuple[Any, Token]]:
        self.expect("{")
        out: dict[str, tuple[Any, Token]] = {}
        if self.accept("}"):
            return out
        while True:
            key = self.expect_kind("ident", "an attribute name")
            self.expect("=", f" after attribute name '{key.text}'")
            if key.text in out:
                raise self.error(f"attribute '{key.text}' is given twice", key)
            out[key.text] = (self.attr_value(), key)
            if self.accept("}"):
                return out
            self.expect(",", " or '}' in the attribute dictionary")

    def attr_value(self) -> Any:
        tok = self.lex.next()
        if tok.kind == "number":
            return _number(tok.text)
        if tok.kind == "ident" and tok.text in ("true", "false"):
            return tok.text == "true"
        if tok.kind == "ident" and (tok.text in ELEMENT_TYPES or tok.text == "bool"):
            return element_type(tok.text)
        if tok.text == "[" and tok.kind == "punct":
            items: list[Any] = []
            if self.accept("]"):
                return items
            while True:
                items.append(_number(self.expect_kind("number", "a number").text))
                if self.accept("]"):
                    return items
                self.expect(",", " or ']' in the list")
        raise self.error("expected an attribute value (true, false, a number, a list such as"
                         f" [1, 2] or an element type), found {_describe(tok)}", tok)

    def type_list(self, close: str) -> list[TensorType]:
        types: list[TensorType] = []
        if self.accept(close):
            return types
        while True:
            types.append(self.type())
            if self.accept(close):
                return types
            self.expect(",", f" or '{close}' in the type list")

    def type(self) -> TensorType:
        tok = self.lex.next()
        if tok.text != "tensor":
            raise self.error(f"expected a tensor type such as tensor<2x3xf32>, found"
                             f" {_describe(tok)}", tok)
        self.expect("<", " after 'tensor'")
        raw = self.lex.raw_until(">")
        m = _SHAPE.fullmatch(raw.text)
        if m is None or m.group(2) not in ELEMENT_TYPES and m.group(2) != "bool":
            raise self.error("expected a static shape and element type such as 2x3xf32 (element"
                             f" types: {', '.join(ELEMENT_TYPES)})", raw)
        try:
            dims = tuple(int(d) for d in m.group(1).split("x") if d)
        except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
            raise self.error("a tensor dimension has thousands of digits; give a size that"
                             " fits in memory", raw) from None
        self.expect(">", " to close the tensor type")
        return TensorType(dims, m.group(2))

    def dense_literal(self) -> Any:
        self.expect("dense", " (a constant's value: dense<...>)")
        self.expect("<", " after 'dense'")
        tok = self.lex.peek()
        value: Any = bytes.fromhex(tok.text[3:-1]) if _is_hex(tok) else None
        if value is not None:
            self.lex.next()
        else:
            value = self.nested()
        self.expect(">", " to close dense<...>")
        return value

    def nested(self, depth: int = 0) -> Any:
        tok = self.lex.next()
        if depth > MAX_CONSTANT_RANK:
            raise self.error(f"the dense literal nests lists more than {MAX_CONSTANT_RANK} deep;"
                             f" constants have at most {MAX_CONSTANT_RANK} dims", tok)
        if tok.kind == "number":
            return _number(tok.text)
        if tok.kind == "ident" and tok.text in ("true", "false"):
            return tok.text == "true"
        if tok.text == "[" and tok.kind == "punct":
            items: list[Any] = []
            if self.accept("]"):
                return items
            while True:
                items.append(self.nested(depth + 1))
                if self.accept("]"):
                    return items
                self.expect(",", " or ']' in the dense literal")
        raise self.error("expected a number, true, false or '[' in the dense literal, found"
                         f" {_describe(tok)}", tok)

    def build_dense(self, raw: Any, t: TensorType, tok: Token, ttok: Token) -> Any:
        import numpy as np

        dtype = np.dtype(t.numpy_dtype)
        if t.rank > MAX_CONSTANT_RANK:
            raise self.error(f"the constant {t} has {t.rank} dims; constants have at most"
                             f" {MAX_CONSTANT_RANK}", ttok)
        if t.byte_size > MAX_CONSTANT_BYTES:
            raise self.error(f"the constant {t} takes {t.byte_size} bytes, more than the"
                             f" {MAX_CONSTANT_BYTES} a text constant may hold; pass large"
                             " weights as function arguments", ttok)
        if isinstance(raw, bytes):
            if len(raw) != t.byte_size:
                raise self.error(f"the hex constant holds {len(raw)} bytes, but {t} needs"
                                 f" {t.byte_size}", tok)
            if t.dtype == "i1":  # any non-zero byte is true; store canonical 0/1 bytes
                return (np.frombuffer(raw, dtype=np.uint8) != 0).reshape(t.shape)
            array = np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype)
            return array.reshape(t.shape)
        if not isinstance(raw, list):
            flat: list[Any] = [raw]
        elif raw == [] and t.size == 0:
            flat = []
        else:
            shape, flat = _shape_of(raw)
            if shape != t.shape:
                raise self.error(f"the dense literal has shape {shape}, but its type {t}"
                                 f" has shape {t.shape}", tok)
        bad = [x for x in flat if isinstance(x, float) and t.dtype[0] != "f"
               or isinstance(x, bool) != (t.dtype == "i1")]
        if bad:
            raise self.error(f"the dense literal holds {bad[0]!r}, which is not a valid"
                             f" {t.dtype} element", tok)
        try:
            with np.errstate(all="ignore"):
                array = np.array(flat, dtype=dtype)
            if t.dtype[0] in "iu" and flat and any(int(a) != b for a, b in zip(array, flat)):
                raise OverflowError
        except (OverflowError, ValueError):
            raise self.error(f"a value of the dense literal does not fit in {t.dtype}",
                             tok) from None
        if not isinstance(raw, list):
            return np.full(t.shape, array[0], dtype=dtype)
        return array.reshape(t.shape)


def _is_hex(tok: Token) -> bool:
    return tok.kind == "string" and tok.text.startswith('"0x') and \
        re.fullmatch(r'"0x([0-9A-Fa-f]{2})*"', tok.text) is not None


def _shape_of(nested: list[Any]) -> tuple[tuple[int, ...], list[Any]]:
    """Shape and flattened elements of a nested list; ragged lists give shape (-1,)."""
    if not isinstance(nested, list):
        return (), [nested]
    parts = [_shape_of(x) for x in nested]
    inner = {p[0] for p in parts}
    if len(inner) > 1:
        return (-1,), []
    flat = [x for _, f in parts for x in f]
    return (len(nested),) + (inner.pop() if inner else ()), flat


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


def _describe(tok: Token) -> str:
    return "the end of input" if tok.kind == "eof" else repr(tok.text)


def parse(text: str, source_name: str = "<string>", verify: bool = True) -> Module:
    """Parse text IR into a Module; verifies it unless ``verify=False``."""
    module = _Parser(text, source_name).module()
    if verify:
        from hal_core.ir.verifier import verify_module

        verify_module(module)
    return module


def parse_file(path: str, verify: bool = True) -> Module:
    with open(path, encoding="utf-8") as f:
        return parse(f.read(), source_name=str(path), verify=verify)
