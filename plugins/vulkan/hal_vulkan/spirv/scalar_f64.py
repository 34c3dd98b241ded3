"""float64 exp, log, tanh and pow, which GLSL.std.450 offers only for 16/32-bit floats.

exp and log reduce the argument with exact steps (Cody-Waite for exp, frexp for log) and sum a
series to below double rounding error, so results stay within a few ulp of the correctly
rounded value: float64 kernels are never silently computed in float32. tanh and pow build on
them (pow's relative error grows with |y log x|, about 1e-13 at the top of the range); erf uses
a series near 0 and erfc's continued fraction beyond.
"""

from __future__ import annotations

import math

from hal_vulkan.spirv.builder import Op
from hal_vulkan.spirv.shader import Shader

ROUND_EVEN, FRAC_EXP, LDEXP = 2, 51, 53
LN2_HI, LN2_LO = 6.93147180369123816490e-01, 1.90821492927058770002e-10


def exp64(sh: Shader, x: int) -> int:
    f, b = sh.f, sh.bool
    t = sh.reg("float64")
    c = lambda v: sh.const("float64", v)  # noqa: E731
    # Clamp so that k stays a small int; the true result outside is 0 or inf anyway.
    xc = f.ext(t, 43, x, c(-746.0), c(710.0))  # FClamp
    k = f.ext(t, ROUND_EVEN, f.op(Op.FMul, t, xc, c(1.0 / math.log(2.0))))
    r = f.op(Op.FSub, t, f.op(Op.FSub, t, xc, f.op(Op.FMul, t, k, c(LN2_HI))),
             f.op(Op.FMul, t, k, c(LN2_LO)))
    p = c(1.0 / math.factorial(13))
    for n in range(12, -1, -1):  # |r| <= ln2/2: the degree-13 Taylor tail is below 1e-17
        p = f.op(Op.FAdd, t, f.op(Op.FMul, t, p, r), c(1.0 / math.factorial(n)))
    # 2^k in two steps: k may reach -1075, below the smallest normal exponent.
    ki = f.op(Op.ConvertFToS, sh.u32, k)
    half = f.op(Op.ShiftRightArithmetic, sh.u32, ki, sh.u(1))
    y = f.ext(t, LDEXP, f.ext(t, LDEXP, p, half), f.op(Op.ISub, sh.u32, ki, half))
    y = f.op(Op.Select, t, f.op(Op.FOrdGreaterThan, b, x, c(709.782712893384)),
             c(float("inf")), y)
    y = f.op(Op.Select, t, f.op(Op.FOrdLessThan, b, x, c(-745.2)), c(0.0), y)
    return f.op(Op.Select, t, f.op(Op.IsNan, b, x), x, y)


def log64(sh: Shader, x: int) -> int:
    f, b = sh.f, sh.bool
    t = sh.reg("float64")
    c = lambda v: sh.const("float64", v)  # noqa: E731
    # Subnormals are scaled up by 2^54 first: drivers may flush them in frexp.
    tiny = f.op(Op.FOrdLessThan, b, x, c(2.2250738585072014e-308))
    xs = f.op(Op.Select, t, tiny, f.op(Op.FMul, t, x, c(2.0 ** 54)), x)
    e_ptr = sh.var(sh.u32)
    m = f.ext(t, FRAC_EXP, xs, e_ptr)          # xs = m * 2^e, m in [0.5, 1)
    e = f.op(Op.Select, sh.u32, tiny, f.op(Op.ISub, sh.u32, f.load(sh.u32, e_ptr), sh.u(54)),
             f.load(sh.u32, e_ptr))
    small = f.op(Op.FOrdLessThan, b, m, c(math.sqrt(0.5)))
    m = f.op(Op.Select, t, small, f.op(Op.FMul, t, m, c(2.0)), m)   # m in [0.707, 1.414)
    e = f.op(Op.Select, sh.u32, small, f.op(Op.ISub, sh.u32, e, sh.u(1)), e)
    fm = f.op(Op.FSub, t, m, c(1.0))
    s = f.op(Op.FDiv, t, fm, f.op(Op.FAdd, t, fm, c(2.0)))   # log m = 2 atanh(s), |s| < 0.172
    s2 = f.op(Op.FMul, t, s, s)
    p = c(1.0 / 25)
    for n in range(23, 0, -2):
        p = f.op(Op.FAdd, t, f.op(Op.FMul, t, p, s2), c(1.0 / n))
    log_m = f.op(Op.FMul, t, f.op(Op.FMul, t, p, s), c(2.0))
    ef = f.op(Op.ConvertSToF, t, e)
    y = f.op(Op.FAdd, t, f.op(Op.FMul, t, ef, c(LN2_HI)),
             f.op(Op.FAdd, t, log_m, f.op(Op.FMul, t, ef, c(LN2_LO))))
    y = f.op(Op.Select, t, f.op(Op.FOrdEqual, b, x, c(0.0)), c(float("-inf")), y)
    y = f.op(Op.Select, t, f.op(Op.FOrdLessThan, b, x, c(0.0)), c(float("nan")), y)
    y = f.op(Op.Select, t, f.op(Op.FOrdEqual, b, x, c(float("inf"))), x, y)
    return f.op(Op.Select, t, f.op(Op.IsNan, b, x), x, y)


#: tanh's odd Taylor coefficients (x, x^3, ..., x^15), used below |x| = 0.125.
_TANH_SERIES = (1.0, -1 / 3, 2 / 15, -17 / 315, 62 / 2835, -1382 / 155925, 21844 / 6081075,
                -929569 / 638512875)


def tanh64(sh: Shader, x: int) -> int:
    """Series near 0 (no cancellation), else 1 - 2/(exp(2|x|) + 1) with the sign of x."""
    f, b = sh.f, sh.bool
    t = sh.reg("float64")
    c = lambda v: sh.const("float64", v)  # noqa: E731
    x2 = f.op(Op.FMul, t, x, x)
    p = c(_TANH_SERIES[-1])
    for k in reversed(_TANH_SERIES[:-1]):
        p = f.op(Op.FAdd, t, f.op(Op.FMul, t, p, x2), c(k))
    small = f.op(Op.FMul, t, p, x)
    ax = f.ext(t, 4, x)  # FAbs
    e = exp64(sh, f.op(Op.FMul, t, ax, c(2.0)))
    big = f.op(Op.FSub, t, c(1.0), f.op(Op.FDiv, t, c(2.0), f.op(Op.FAdd, t, e, c(1.0))))
    big = f.op(Op.Select, t, f.op(Op.FOrdLessThan, b, x, c(0.0)), f.op(Op.FNegate, t, big), big)
    y = f.op(Op.Select, t, f.op(Op.FOrdLessThan, b, ax, c(0.125)), small, big)
    return f.op(Op.Select, t, f.op(Op.IsNan, b, x), x, y)


def pow_magnitude64(sh: Shader, ax: int, y: int) -> int:
    """|x|**y as exp(y log|x|) (relative error about |y log x| * 2^-53)."""
    t = sh.reg("float64")
    return exp64(sh, sh.f.op(Op.FMul, t, y, log64(sh, ax)))


def erf64(sh: Shader, x: int) -> int:
    """Maclaurin series (30 terms) for |x| <= 2, else 1 - erfc(|x|) from erfc's continued
    fraction (40 terms, evaluated from the tail), both below 5e-16 relative error."""
    f, b = sh.f, sh.bool
    t = sh.reg("float64")
    c = lambda v: sh.const("float64", v)  # noqa: E731
    x2 = f.op(Op.FMul, t, x, x)
    p = c((-1) ** 29 / (math.factorial(29) * 59))
    for n in range(28, -1, -1):
        coeff = (-1) ** n / (math.factorial(n) * (2 * n + 1))
        p = f.op(Op.FAdd, t, f.op(Op.FMul, t, p, x2), c(coeff))
    small = f.op(Op.FMul, t, f.op(Op.FMul, t, p, x), c(2 / math.sqrt(math.pi)))
    ax = f.ext(t, 4, x)  # FAbs
    ac = f.ext(t, 37, ax, c(30.0))  # FMin: erf is 1 beyond 6; keeps exp(-x^2) finite
    k = ac
    for n in range(40, 0, -1):
        k = f.op(Op.FAdd, t, ac, f.op(Op.FDiv, t, c(n / 2), k))
    erfc = f.op(Op.FDiv, t, exp64(sh, f.op(Op.FNegate, t, f.op(Op.FMul, t, ac, ac))),
                f.op(Op.FMul, t, k, c(math.sqrt(math.pi))))
    big = f.op(Op.FSub, t, c(1.0), erfc)
    big = f.op(Op.Select, t, f.op(Op.FOrdLessThan, b, x, c(0.0)), f.op(Op.FNegate, t, big), big)
    y = f.op(Op.Select, t, f.op(Op.FOrdLessThanEqual, b, ax, c(2.0)), small, big)
    return f.op(Op.Select, t, f.op(Op.IsNan, b, x), x, y)
