"""LLVM IR building blocks shared by the kernel lowerings: types, loops, operand access and
the scalar semantics of kernel IR (see :mod:`hal_core.compiler.kernel_ir`).

Values live in registers as their storage type, except bool (``i1``; stored as ``i8`` 0/1).
float16 math is done in float32 and rounded once per op, as kernel IR allows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from llvmlite import ir

from hal_core.compiler import kernel_ir as K
from hal_llvm_cpu import mathfns

try:
    from hal_core.errors import UnsupportedKernelError
except ImportError:   # before the core declares it (contract 3)
    from hal_core.errors import CompileError

    class UnsupportedKernelError(CompileError):  # type: ignore[no-redef]
        """A target declines one kernel; other targets' variants may still cover it."""

I1, I8, I32, I64 = ir.IntType(1), ir.IntType(8), ir.IntType(32), ir.IntType(64)
F16, F32, F64 = ir.HalfType(), ir.FloatType(), ir.DoubleType()
PTR = ir.PointerType()
FAST = ("reassoc", "contract")   # for float reductions only: lets the vectoriser reorder sums

_LL = {"bool": I1, "int8": I8, "uint8": I8, "int16": ir.IntType(16), "uint16": ir.IntType(16),
       "int32": I32, "uint32": I32, "int64": I64, "uint64": I64,
       "float16": F16, "float32": F32, "float64": F64}
_STORE = dict(_LL, bool=I8)


def ll(dtype: str) -> ir.Type:
    return _LL[dtype]


def is_float(dtype: str) -> bool:
    return dtype in K.FLOAT_DTYPES


def is_signed(dtype: str) -> bool:
    return dtype.startswith("int")


def bits(dtype: str) -> int:
    return 1 if dtype == "bool" else K.DTYPES[dtype] * 8


def const(dtype: str, value: float | int | bool) -> ir.Constant:
    t = _LL[dtype]
    if is_float(dtype):
        return ir.Constant(t, float(value))
    if dtype == "bool":
        return ir.Constant(I1, int(bool(value)))
    return ir.Constant(t, int(value) & ((1 << bits(dtype)) - 1))


def i64(v: int) -> ir.Constant:
    return ir.Constant(I64, v)


class Func:
    """A function being built: its builder, an entry block for allocas, and helpers."""

    def __init__(self, module: ir.Module, name: str, ret: ir.Type, args: Sequence[ir.Type],
                 linkage: str = "", noalias: Sequence[int] = ()) -> None:
        self.module = module
        self.fn = ir.Function(module, ir.FunctionType(ret, args), name=name)
        if linkage:
            self.fn.linkage = linkage
        for i in noalias:
            self.fn.args[i].add_attribute("noalias")
        self.allocas = self.fn.append_basic_block("allocas")
        start = self.fn.append_basic_block("start")
        self.b = ir.IRBuilder(start)

    def finish(self) -> None:
        with self.b.goto_block(self.allocas):
            self.b.branch(self.fn.blocks[1])

    def var(self, t: ir.Type, init: ir.Value | None = None, name: str = "") -> ir.AllocaInstr:
        with self.b.goto_block(self.allocas):
            slot = self.b.alloca(t, name=name)
        if init is not None:
            self.b.store(init, slot)
        return slot

    def array(self, t: ir.Type, n: int) -> ir.AllocaInstr:
        with self.b.goto_block(self.allocas):
            return self.b.alloca(t, size=n)

    def intrinsic(self, name: str, ret: ir.Type, args: Sequence[ir.Type]) -> ir.Function:
        return declare(self.module, name, ret, args)

    # -- control flow ---------------------------------------------------------------------

    def loop(self, lo: ir.Value | int, hi: ir.Value | int, body: Callable[[ir.Value], None],
             step: int = 1, name: str = "i") -> None:
        """``for i in range(lo, hi, step): body(i)`` (i64, step > 0)."""
        b = self.b
        lo = i64(lo) if isinstance(lo, int) else lo
        hi = i64(hi) if isinstance(hi, int) else hi
        pre = b.block
        head = b.append_basic_block(name + ".head")
        loop_body = b.append_basic_block(name + ".body")
        exit_ = b.append_basic_block(name + ".exit")
        b.branch(head)
        b.position_at_end(head)
        i = b.phi(I64, name=name)
        i.add_incoming(lo, pre)
        b.cbranch(b.icmp_signed("<", i, hi), loop_body, exit_)
        b.position_at_end(loop_body)
        body(i)
        i.add_incoming(b.add(i, i64(step), flags=["nsw"]), b.block)
        b.branch(head)
        b.position_at_end(exit_)

    def loops(self, sizes: Sequence[int], body: Callable[[list[ir.Value]], None]) -> None:
        """A nest over ``range(sizes[0]) x range(sizes[1]) x ...`` (last fastest)."""
        def nest(d: int, idx: list[ir.Value]) -> None:
            if d == len(sizes):
                body(idx)
                return
            self.loop(0, sizes[d], lambda i: nest(d + 1, idx + [i]), name=f"d{d}")
        nest(0, [])

    def min64(self, a: ir.Value, c: ir.Value) -> ir.Value:
        return self.b.select(self.b.icmp_signed("<", a, c), a, c)

    def max64(self, a: ir.Value, c: ir.Value) -> ir.Value:
        return self.b.select(self.b.icmp_signed(">", a, c), a, c)


def declare(module: ir.Module, name: str, ret: ir.Type, args: Sequence[ir.Type]) -> ir.Function:
    try:
        return module.get_global(name)
    except KeyError:
        return ir.Function(module, ir.FunctionType(ret, args), name=name)


def _suffix(t: ir.Type) -> str:
    if isinstance(t, ir.VectorType):
        return f"v{t.count}{_suffix(t.element)}"
    return {F16: "f16", F32: "f32", F64: "f64"}.get(t) or f"i{t.width}"


def call_intr(f: Func, base: str, args: Sequence[ir.Value], ret: ir.Type | None = None
              ) -> ir.Value:
    t = args[0].type
    name = f"llvm.{base}.{_suffix(ret)}.{_suffix(t)}" if ret is not None else \
        f"llvm.{base}.{_suffix(t)}"
    return f.b.call(declare(f.module, name, ret or t, [a.type for a in args]), list(args))


# ---------------------------------------------------------------------------------------------
# Operands


class Operand:
    """A kernel operand with its element offset as a linear function of index coordinates."""

    def __init__(self, f: Func, binding_ptrs: Sequence[ir.Value], op: K.KernelOperand,
                 coeffs: Sequence[int], offset: int) -> None:
        self.f, self.dtype = f, op.dtype
        self.coeffs, self.offset = tuple(coeffs), offset
        base = binding_ptrs[op.binding]
        if op.byte_offset:
            base = f.b.gep(base, [i64(op.byte_offset)], inbounds=True, source_etype=I8)
        self.base = base

    @staticmethod
    def strides(shape: Sequence[int]) -> list[int]:
        out, s = [], 1
        for n in reversed(shape):
            out.append(s)
            s *= n
        return out[::-1]

    @classmethod
    def mapped(cls, f: Func, ptrs: Sequence[ir.Value], m: K.MappedOperand) -> Operand:
        st = cls.strides(m.operand.shape)
        coeffs = [sum(s * e.coeffs[d] for s, e in zip(st, m.map.exprs))
                  for d in range(m.map.num_dims)]
        return cls(f, ptrs, m.operand, coeffs, sum(s * e.constant for s, e in zip(st, m.map.exprs)))

    @classmethod
    def dense(cls, f: Func, ptrs: Sequence[ir.Value], op: K.KernelOperand) -> Operand:
        """Indexed by the operand's own coordinates."""
        return cls(f, ptrs, op, cls.strides(op.shape), 0)

    def index(self, coords: Sequence[ir.Value | int]) -> ir.Value:
        b = self.f.b
        acc: ir.Value = i64(self.offset)
        for c, x in zip(self.coeffs, coords):
            if c == 0:
                continue
            x = i64(x) if isinstance(x, int) else x
            acc = b.add(acc, x if c == 1 else b.mul(x, i64(c)))
        return acc

    def ptr(self, index: ir.Value, inbounds: bool = True) -> ir.Value:
        """``inbounds=False`` for the base of a masked access whose masked-off lanes may lie
        outside the operand (an inbounds GEP there would be poison)."""
        return self.f.b.gep(self.base, [index], inbounds=inbounds,
                            source_etype=_STORE[self.dtype])

    def load_at(self, index: ir.Value) -> ir.Value:
        v = self.f.b.load(self.ptr(index), typ=_STORE[self.dtype], align=K.DTYPES[self.dtype])
        return self.f.b.trunc(v, I1) if self.dtype == "bool" else v

    def store_at(self, index: ir.Value, value: ir.Value) -> None:
        if self.dtype == "bool":
            value = self.f.b.zext(value, I8)
        self.f.b.store(value, self.ptr(index), align=K.DTYPES[self.dtype])

    def load(self, coords: Sequence[ir.Value | int]) -> ir.Value:
        return self.load_at(self.index(coords))

    def store(self, coords: Sequence[ir.Value | int], value: ir.Value) -> None:
        self.store_at(self.index(coords), value)


# ---------------------------------------------------------------------------------------------
# Scalar semantics


def identity(combiner: str, dtype: str) -> ir.Constant:
    if combiner == "sum":
        return const(dtype, 0)
    if combiner == "prod":
        return const(dtype, 1)
    lowest = combiner == "max"
    if is_float(dtype):
        return const(dtype, -math.inf if lowest else math.inf)
    if dtype == "bool":
        return const(dtype, 0 if lowest else 1)
    n = bits(dtype)
    if is_signed(dtype):
        return const(dtype, -(1 << (n - 1)) if lowest else (1 << (n - 1)) - 1)
    return const(dtype, 0 if lowest else (1 << n) - 1)


def combine(f: Func, combiner: str, dtype: str, a: ir.Value, x: ir.Value) -> ir.Value:
    b = f.b
    if combiner in ("sum", "prod"):
        if is_float(dtype):
            return (b.fadd if combiner == "sum" else b.fmul)(a, x, flags=FAST)
        if dtype == "bool":
            return (b.or_ if combiner == "sum" else b.and_)(a, x)
        return (b.add if combiner == "sum" else b.mul)(a, x)
    return minmax(f, combiner, dtype, a, x)


def minmax(f: Func, which: str, dtype: str, a: ir.Value, x: ir.Value) -> ir.Value:
    if is_float(dtype):
        return call_intr(f, "maximum" if which == "max" else "minimum", [a, x])
    prefix = "s" if is_signed(dtype) else "u"
    return call_intr(f, prefix + which, [a, x])


def cast(f: Func, v: ir.Value, src: str, dst: str) -> ir.Value:
    b = f.b
    if src == dst:
        return v
    st, dt = _LL[src], _LL[dst]
    if dst == "float16" and src != "float32" and src != "bool":
        # Through float32: exact for every integer that float16 can hold (larger ones are
        # inf either way); float64 rounds to odd first so that the second rounding is correct.
        # (A direct fptrunc double->half is a libgcc call that the JIT may not resolve.)
        wide = _round_to_odd_f32(f, v) if src == "float64" else cast(f, v, src, "float32")
        return b.fptrunc(wide, F16)
    if src == "float16" and dst not in ("float32", "bool"):
        return cast(f, b.fpext(v, F32), "float32", dst)
    if dst == "bool":
        if is_float(src):
            return b.fcmp_unordered("!=", v, ir.Constant(st, 0.0))
        return b.icmp_unsigned("!=", v, ir.Constant(st, 0))
    if src == "bool":
        return b.uitofp(v, dt) if is_float(dst) else b.zext(v, dt)
    if is_float(src) and is_float(dst):
        return b.fpext(v, dt) if bits(dst) > bits(src) else b.fptrunc(v, dt)
    if is_float(src):
        # Saturating conversions: out-of-range and NaN give a defined (if unspecified) value
        # instead of poison.
        return call_intr(f, "fptosi.sat" if is_signed(dst) else "fptoui.sat", [v], ret=dt)
    if is_float(dst):
        return b.sitofp(v, dt) if is_signed(src) else b.uitofp(v, dt)
    if bits(dst) < bits(src):
        return b.trunc(v, dt)
    if bits(dst) > bits(src):
        return b.sext(v, dt) if is_signed(src) else b.zext(v, dt)
    return v


def _round_to_odd_f32(f: Func, d: ir.Value) -> ir.Value:
    b = f.b
    t = b.fptrunc(d, F32)
    exact = b.fcmp_ordered("==", b.fpext(t, F64), d)
    bits_ = b.bitcast(t, I32)
    too_big = b.fcmp_ordered(">", call_intr(f, "fabs", [b.fpext(t, F64)]),
                             call_intr(f, "fabs", [d]))
    toward_zero = b.select(too_big, b.sub(bits_, ir.Constant(I32, 1)), bits_)
    odd = b.bitcast(b.or_(toward_zero, ir.Constant(I32, 1)), F32)
    return b.select(exact, t, odd)


def _int_div(f: Func, dtype: str, a: ir.Value, c: ir.Value) -> ir.Value:
    b, t = f.b, _LL[dtype]
    zero, one = ir.Constant(t, 0), ir.Constant(t, 1)
    is_zero = b.icmp_unsigned("==", c, zero)
    if not is_signed(dtype):
        return b.select(is_zero, zero, b.udiv(a, b.select(is_zero, one, c)))
    minus1 = b.icmp_signed("==", c, ir.Constant(t, -1))
    safe = b.select(b.or_(is_zero, minus1), one, c)
    q = b.sdiv(a, safe)
    return b.select(is_zero, zero, b.select(minus1, b.sub(zero, a), q))


def _int_pow(f: Func, dtype: str, x: ir.Value, e: ir.Value) -> ir.Value:
    """Exponentiation by squaring over every bit of ``e`` (straight-line, so it vectorises)."""
    b, t = f.b, _LL[dtype]
    zero, one = ir.Constant(t, 0), ir.Constant(t, 1)
    r, base = one, x
    for i in range(bits(dtype)):
        bit = b.icmp_unsigned("!=", b.and_(b.lshr(e, ir.Constant(t, i)), one), zero)
        r = b.select(bit, b.mul(r, base), r)
        base = b.mul(base, base)
    if not is_signed(dtype):
        return r
    # Negative exponent: 1/(x**-e) truncated -> 1 for x == 1, +-1 for x == -1, else 0.
    odd = b.icmp_unsigned("!=", b.and_(e, one), zero)
    neg_one = b.select(odd, ir.Constant(t, -1), one)
    small = b.select(b.icmp_signed("==", x, one), one,
                     b.select(b.icmp_signed("==", x, ir.Constant(t, -1)), neg_one, zero))
    return b.select(b.icmp_signed("<", e, zero), small, r)


_UNARY_FLOAT_INTR = {"sqrt": "sqrt", "floor": "floor", "ceil": "ceil", "round": "roundeven",
                     "abs": "fabs"}
_CMP = {"cmp_eq": "==", "cmp_ne": "!=", "cmp_lt": "<", "cmp_le": "<=", "cmp_gt": ">",
        "cmp_ge": ">="}


def _float_op(f: Func, opcode: str, args: list[ir.Value], dtype: str) -> ir.Value:
    b = f.b
    t = args[0].type
    if opcode == "add":
        return b.fadd(*args)
    if opcode == "sub":
        return b.fsub(*args)
    if opcode == "mul":
        return b.fmul(*args)
    if opcode == "div":
        return b.fdiv(*args)
    if opcode == "neg":
        return b.fneg(args[0])
    if opcode in ("max", "min"):
        return minmax(f, opcode, dtype, *args)
    if opcode == "relu":
        return minmax(f, "max", dtype, args[0], ir.Constant(t, 0.0))
    if opcode == "clip":
        return minmax(f, "min", dtype, minmax(f, "max", dtype, args[0], args[1]), args[2])
    if opcode in _UNARY_FLOAT_INTR:
        return call_intr(f, _UNARY_FLOAT_INTR[opcode], args)
    if opcode == "rsqrt":
        return b.fdiv(ir.Constant(t, 1.0), call_intr(f, "sqrt", args))
    if opcode == "pow":
        return mathfns.pow_(f, args[0], args[1])
    if opcode in ("exp", "log", "tanh", "sigmoid", "erf"):
        return getattr(mathfns, opcode)(f, args[0])
    raise UnsupportedKernelError(f"llvm-cpu: scalar op {opcode!r} on {dtype} is not lowered")


def _int_op(f: Func, opcode: str, args: list[ir.Value], dtype: str) -> ir.Value:
    b = f.b
    t = args[0].type
    zero = ir.Constant(t, 0)
    if opcode == "add":
        return b.add(*args)
    if opcode == "sub":
        return b.sub(*args)
    if opcode == "mul":
        return b.mul(*args)
    if opcode == "div":
        return _int_div(f, dtype, *args)
    if opcode == "pow":
        return _int_pow(f, dtype, *args)
    if opcode == "neg":
        return b.sub(zero, args[0])
    if opcode == "abs":
        if not is_signed(dtype):
            return args[0]
        return b.select(b.icmp_signed("<", args[0], zero), b.sub(zero, args[0]), args[0])
    if opcode in ("max", "min"):
        return minmax(f, opcode, dtype, *args)
    if opcode == "relu":
        return minmax(f, "max", dtype, args[0], zero)
    if opcode == "clip":
        return minmax(f, "min", dtype, minmax(f, "max", dtype, args[0], args[1]), args[2])
    raise UnsupportedKernelError(f"llvm-cpu: scalar op {opcode!r} on {dtype} is not lowered")


def scalar_op(f: Func, op: K.ScalarOp, args: list[ir.Value], arg_dtypes: list[str]) -> ir.Value:
    b, dtype, opcode = f.b, op.dtype, op.opcode
    if opcode == "cast":
        return cast(f, args[0], arg_dtypes[0], dtype)
    if opcode in _CMP:
        src = arg_dtypes[0]
        if is_float(src):
            if opcode == "cmp_ne":
                return b.fcmp_unordered("!=", *args)
            return b.fcmp_ordered(_CMP[opcode], *args)
        cmp = b.icmp_signed if is_signed(src) else b.icmp_unsigned
        return cmp(_CMP[opcode], *args)
    if opcode == "select":
        return b.select(*args)
    if opcode in ("and", "or"):
        return (b.and_ if opcode == "and" else b.or_)(*args)
    if opcode == "not":
        return b.xor(args[0], ir.Constant(args[0].type, -1 if dtype != "bool" else 1))
    if dtype == "bool":   # max/min on bool: or/and
        if opcode in ("max", "min"):
            return (b.or_ if opcode == "max" else b.and_)(*args)
        raise UnsupportedKernelError(f"llvm-cpu: scalar op {opcode!r} on bool is not lowered")
    if is_float(dtype):
        if dtype == "float16":
            wide = [b.fpext(a, F32) for a in args]
            return b.fptrunc(_float_op(f, opcode, wide, "float32"), F16)
        return _float_op(f, opcode, args, dtype)
    return _int_op(f, opcode, args, dtype)


class Body:
    """Evaluates a scalar body (``body``/``yields``) at one point."""

    def __init__(self, body: Sequence[K.ScalarOp], yields: Sequence[K.ValueRef],
                 input_dtypes: Sequence[str], acc_dtypes: Sequence[str] = ()) -> None:
        self.body, self.yields = tuple(body), tuple(yields)
        self.input_dtypes, self.acc_dtypes = tuple(input_dtypes), tuple(acc_dtypes)

    def dtype_of(self, ref: K.ValueRef) -> str:
        if isinstance(ref, K.Input):
            return self.input_dtypes[ref.index]
        if isinstance(ref, K.Result):
            return self.body[ref.index].dtype
        if isinstance(ref, K.Const):
            return ref.dtype
        if isinstance(ref, K.IterIndex):
            return "int64"
        return self.acc_dtypes[ref.index]

    def emit(self, f: Func, load_input: Callable[[int], ir.Value],
             coords: Sequence[ir.Value], accs: Sequence[ir.Value] = ()) -> list[ir.Value]:
        loaded: dict[int, ir.Value] = {}
        results: list[ir.Value] = []

        def value(ref: K.ValueRef) -> ir.Value:
            if isinstance(ref, K.Input):
                if ref.index not in loaded:
                    loaded[ref.index] = load_input(ref.index)
                return loaded[ref.index]
            if isinstance(ref, K.Result):
                return results[ref.index]
            if isinstance(ref, K.Const):
                return const(ref.dtype, ref.value)
            if isinstance(ref, K.IterIndex):
                return coords[ref.dim]
            return accs[ref.index]

        for op in self.body:
            results.append(scalar_op(f, op, [value(a) for a in op.args],
                                     [self.dtype_of(a) for a in op.args]))
        return [value(y) for y in self.yields]


def emit_epilogue(f: Func, epi: K.Epilogue | None, ptrs: Sequence[ir.Value],
                  coords: Sequence[ir.Value], accs: Sequence[ir.Value], acc_dtypes: Sequence[str],
                  out_dtypes: Sequence[str], inputs: Sequence[Operand] | None = None
                  ) -> list[ir.Value]:
    """The stored values: ``epi`` applied to ``accs`` at ``coords``, or the accs cast."""
    if epi is None:
        return [cast(f, a, s, d) for a, s, d in zip(accs, acc_dtypes, out_dtypes)]
    ops = inputs if inputs is not None else epilogue_operands(f, epi, ptrs)
    body = Body(epi.body, epi.yields, [m.operand.dtype for m in epi.inputs], acc_dtypes)
    return body.emit(f, lambda i: ops[i].load(coords), coords, accs)


def epilogue_operands(f: Func, epi: K.Epilogue | None, ptrs: Sequence[ir.Value]
                      ) -> list[Operand]:
    return [] if epi is None else [Operand.mapped(f, ptrs, m) for m in epi.inputs]
