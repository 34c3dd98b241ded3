"""Transcendental functions as straight-line LLVM IR, so the loop vectoriser widens them.

A scalar libm call per element runs ~10x slower than numpy; these polynomial forms vectorise.
Accuracy (measured against float64 numpy in tests/llvm_cpu/test_mathfns.py): float32 within
1e-6 relative; float64 exp/log use longer polynomials; float64 tanh/erf/pow call libm.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from llvmlite import ir

if TYPE_CHECKING:
    from hal_llvm_cpu.codegen import Func

_F32, _F64 = ir.FloatType(), ir.DoubleType()


def _c(t: ir.Type, v: float) -> ir.Constant:
    return ir.Constant(t, v)


def _poly(f: Func, x: ir.Value, coeffs: list[float]) -> ir.Value:
    """Horner: coeffs[0] + x*(coeffs[1] + x*(...)), with fma contraction allowed."""
    b, t = f.b, x.type
    acc = _c(t, coeffs[-1])
    for c in reversed(coeffs[:-1]):
        acc = b.fadd(b.fmul(acc, x, flags=("contract",)), _c(t, c), flags=("contract",))
    return acc


def _call(f: Func, name: str, x: ir.Value, *more: ir.Value) -> ir.Value:
    from hal_llvm_cpu.codegen import declare

    args = [x, *more]
    return f.b.call(declare(f.module, name, x.type, [a.type for a in args]), args)


def _intr(f: Func, base: str, *args: ir.Value) -> ir.Value:
    from hal_llvm_cpu.codegen import call_intr

    return call_intr(f, base, list(args))


def _is_nan(f: Func, x: ir.Value) -> ir.Value:
    return f.b.fcmp_unordered("uno", x, x)


def _pow2i(f: Func, n: ir.Value, t: ir.Type) -> ir.Value:
    """2**n for an integer-valued float n in the normal exponent range."""
    b = f.b
    it, mant, bias = (ir.IntType(32), 23, 127) if t == _F32 else (ir.IntType(64), 52, 1023)
    k = b.fptosi(n, it)
    return b.bitcast(b.shl(b.add(k, ir.Constant(it, bias)), ir.Constant(it, mant)), t)


def exp(f: Func, x: ir.Value) -> ir.Value:
    b, t = f.b, x.type
    if t == _F32:
        lo, hi, deg = -104.0, 89.0, 7
        ln2_hi, ln2_lo = 0.693145751953125, 1.428606765330187045e-06
    else:
        lo, hi, deg = -746.0, 710.0, 13
        ln2_hi, ln2_lo = 6.93147180369123816490e-01, 1.90821492927058770002e-10
    xc = _intr(f, "minnum", _intr(f, "maxnum", x, _c(t, lo)), _c(t, hi))
    n = _intr(f, "roundeven", b.fmul(xc, _c(t, 1 / math.log(2))))
    r = b.fsub(b.fsub(xc, b.fmul(n, _c(t, ln2_hi))), b.fmul(n, _c(t, ln2_lo)))
    p = _poly(f, r, [1 / math.factorial(i) for i in range(deg + 1)])
    # 2**n in two halves so that results below the normal range come out subnormal, not 0.
    half = _intr(f, "trunc", b.fmul(n, _c(t, 0.5)))
    y = b.fmul(b.fmul(p, _pow2i(f, half, t)), _pow2i(f, b.fsub(n, half), t))
    return b.select(_is_nan(f, x), x, y)


def log(f: Func, x: ir.Value) -> ir.Value:
    b, t = f.b, x.type
    it, mant, bias = (ir.IntType(32), 23, 127) if t == _F32 else (ir.IntType(64), 52, 1023)
    terms = 6 if t == _F32 else 12
    # Subnormals: scale into the normal range first.
    tiny = b.fcmp_ordered("<", x, _c(t, 2.0 ** (-bias + 1)))
    xs = b.select(tiny, b.fmul(x, _c(t, 2.0 ** mant)), x)
    adj = b.select(tiny, _c(t, float(mant)), _c(t, 0.0))
    bits_ = b.bitcast(xs, it)
    e = b.sub(b.lshr(bits_, ir.Constant(it, mant)), ir.Constant(it, bias))
    m_bits = b.or_(b.and_(bits_, ir.Constant(it, (1 << mant) - 1)),
                   ir.Constant(it, bias << mant))
    m = b.bitcast(m_bits, t)                         # [1, 2)
    big = b.fcmp_ordered(">", m, _c(t, math.sqrt(2.0)))
    m = b.select(big, b.fmul(m, _c(t, 0.5)), m)
    ef = b.fsub(b.sitofp(b.add(e, b.zext(big, it)), t), adj)
    s = b.fdiv(b.fsub(m, _c(t, 1.0)), b.fadd(m, _c(t, 1.0)))
    s2 = b.fmul(s, s)
    # log(m) = 2 atanh(s) = 2 (s + s^3/3 + s^5/5 + ...)
    series = _poly(f, s2, [2.0 / (2 * i + 1) for i in range(terms)])
    logm = b.fmul(s, series)
    y = b.fadd(b.fadd(b.fmul(ef, _c(t, 1.90821492927058770002e-10)), logm),
               b.fmul(ef, _c(t, 6.93147180369123816490e-01)))
    y = b.select(b.fcmp_ordered("==", x, _c(t, 0.0)), _c(t, -math.inf), y)
    y = b.select(b.fcmp_ordered("==", x, _c(t, math.inf)), x, y)
    return b.select(b.fcmp_unordered("<", x, _c(t, 0.0)), _c(t, math.nan), y)


def sigmoid(f: Func, x: ir.Value) -> ir.Value:
    # e = exp(-|x|) never overflows; for x < 0, e/(1+e) keeps tiny results (subnormals too).
    b, t = f.b, x.type
    e = exp(f, b.fneg(_intr(f, "fabs", x)))
    s = b.fdiv(_c(t, 1.0), b.fadd(_c(t, 1.0), e))
    return b.select(b.fcmp_unordered("<", x, _c(t, 0.0)), b.fmul(e, s), s)


# tanh(x) ~ x P(x^2) / Q(x^2) on |x| <= 7.905 (beyond it tanh rounds to +-1 in float32):
# a rational minimax fit (as Eigen's float tanh); 3.9e-7 relative at most, measured.
_TANH_P = [4.89352455891786e-03, 6.37261928875436e-04, 1.48572235717979e-05,
           5.12229709037114e-08, -8.60467152213735e-11, 2.00018790482477e-13,
           -2.76076847742355e-16]
_TANH_Q = [4.89352518554385e-03, 2.26843463243900e-03, 1.18534705686654e-04,
           1.19825839466702e-06]


def tanh(f: Func, x: ir.Value) -> ir.Value:
    b, t = f.b, x.type
    if t == _F64:
        return _call(f, "tanh", x)
    lim = 7.90531110763549805
    xc = _intr(f, "minnum", _intr(f, "maxnum", x, _c(t, -lim)), _c(t, lim))
    x2 = b.fmul(xc, xc)
    y = b.fdiv(b.fmul(xc, _poly(f, x2, _TANH_P)), _poly(f, x2, _TANH_Q))
    y = b.select(b.fcmp_ordered("<", _intr(f, "fabs", x), _c(t, 0.0004)), x, y)
    return b.select(_is_nan(f, x), x, y)


# erf(x) = 2/sqrt(pi) * sum (-1)^n x^(2n+1) / (n! (2n+1)) for |x| < 0.5
_ERF = [2 / math.sqrt(math.pi) * (-1) ** n / (math.factorial(n) * (2 * n + 1)) for n in range(10)]
# erfc(z) ~ t exp(-z^2 + P(t)), t = 1/(1 + z/2): fractional error < 1.2e-7 (Chebyshev fit).
_ERFC = [-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807,
         -1.13520398, 1.48851587, -0.82215223, 0.17087277]


def erf(f: Func, x: ir.Value) -> ir.Value:
    b, t = f.b, x.type
    if t == _F64:
        return _call(f, "erf", x)
    xd = b.fpext(x, _F64)
    ax = _intr(f, "fabs", xd)
    small = b.fmul(xd, _poly(f, b.fmul(xd, xd), _ERF))
    tt = b.fdiv(_c(_F64, 1.0), b.fadd(_c(_F64, 1.0), b.fmul(ax, _c(_F64, 0.5))))
    arg = b.fadd(b.fneg(b.fmul(ax, ax)), _poly(f, tt, _ERFC))
    erfc = b.fmul(tt, exp(f, arg))
    large = _intr(f, "copysign", b.fsub(_c(_F64, 1.0), erfc), xd)
    y = b.select(b.fcmp_ordered("<", ax, _c(_F64, 0.5)), small, large)
    return b.fptrunc(b.select(_is_nan(f, xd), xd, y), _F32)


def pow_(f: Func, x: ir.Value, y: ir.Value) -> ir.Value:
    return _intr(f, "pow", x, y)
