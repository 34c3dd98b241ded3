"""Kernel-IR scalar ops as SPIR-V, following kernel_ir's scalar semantics (vmvx is the reference).

Registers are as :class:`~hal_vulkan.spirv.shader.Shader` keeps them: small integers in uint32
(canonical after each op), float16 in f32 rounded to half after each op.
"""

from __future__ import annotations

from hal_core.compiler.kernel_ir import DTYPES, FLOAT_DTYPES, ScalarOp
from hal_vulkan.spirv.builder import Op
from hal_vulkan.spirv.shader import GLSL_PACK_HALF, GLSL_UNPACK_HALF, Shader

# GLSL.std.450 instruction numbers
ROUND_EVEN, FABS, SABS, FLOOR, CEIL, TANH, POW, EXP, LOG, SQRT = 2, 4, 5, 8, 9, 21, 26, 27, 28, 31
UMIN, SMIN, UMAX, SMAX, FCLAMP = 38, 39, 41, 42, 43

SIGNED = frozenset({"int8", "int16", "int32", "int64"})
#: GLSL.std.450 offers exp, log, tanh and pow only for 16/32-bit floats: float64 versions of
#: those (and erf) are in :mod:`hal_vulkan.spirv.scalar_f64`.


def round_half(sh: Shader, v: int) -> int:
    """Round an f32 register to float16 precision (and range)."""
    v2 = sh.f.op(Op.CompositeConstruct, sh.m.t_vec(sh.f32, 2), v, sh.m.const(sh.f32, 0.0))
    bits = sh.f.ext(sh.u32, GLSL_PACK_HALF, v2)
    back = sh.f.ext(sh.m.t_vec(sh.f32, 2), GLSL_UNPACK_HALF, bits)
    return sh.f.op(Op.CompositeExtract, sh.f32, back, 0)


def normalize(sh: Shader, dtype: str, v: int) -> int:
    if dtype == "float16":
        return round_half(sh, v)
    return sh.canonical(dtype, v)


def fmax(sh: Shader, t: int, a: int, b: int, is_max: bool) -> int:
    """NaN-propagating max/min."""
    pick = sh.f.op(Op.FOrdGreaterThan if is_max else Op.FOrdLessThan, sh.bool, a, b)
    r = sh.f.op(Op.Select, t, pick, a, b)
    r = sh.f.op(Op.Select, t, sh.f.op(Op.IsNan, sh.bool, b), b, r)
    return sh.f.op(Op.Select, t, sh.f.op(Op.IsNan, sh.bool, a), a, r)


def max_min(sh: Shader, dtype: str, a: int, b: int, is_max: bool) -> int:
    t = sh.reg(dtype)
    if dtype == "bool":
        return sh.f.op(Op.LogicalOr if is_max else Op.LogicalAnd, t, a, b)
    if dtype in FLOAT_DTYPES:
        return fmax(sh, t, a, b, is_max)
    signed = dtype in SIGNED
    return sh.f.ext(t, (SMAX if signed else UMAX) if is_max else (SMIN if signed else UMIN), a, b)


def combine(sh: Shader, combiner: str, dtype: str, a: int, b: int) -> int:
    """One step of a reduction's combiner in the accumulator dtype."""
    if combiner in ("max", "min"):
        return max_min(sh, dtype, a, b, combiner == "max")
    if dtype == "bool":
        return sh.f.op(Op.LogicalOr if combiner == "sum" else Op.LogicalAnd, sh.bool, a, b)
    return binary(sh, "add" if combiner == "sum" else "mul", dtype, a, b)


def identity(sh: Shader, combiner: str, dtype: str) -> int:
    import numpy as np

    if combiner == "sum":
        return sh.const(dtype, 0)
    if combiner == "prod":
        return sh.const(dtype, 1)
    if dtype == "bool":
        return sh.const(dtype, combiner == "min")
    if dtype in FLOAT_DTYPES:
        return sh.const(dtype, float("-inf") if combiner == "max" else float("inf"))
    info = np.iinfo(dtype)
    return sh.const(dtype, info.min if combiner == "max" else info.max)


def binary(sh: Shader, opcode: str, dtype: str, a: int, b: int) -> int:
    t = sh.reg(dtype)
    f = sh.f
    if dtype in FLOAT_DTYPES:
        code = {"add": Op.FAdd, "sub": Op.FSub, "mul": Op.FMul, "div": Op.FDiv}[opcode]
        return normalize(sh, dtype, f.op(code, t, a, b))
    if opcode != "div":
        code = {"add": Op.IAdd, "sub": Op.ISub, "mul": Op.IMul}[opcode]
        return sh.canonical(dtype, f.op(code, t, a, b))
    zero, one = sh.const(dtype, 0), sh.const(dtype, 1)
    b_zero = f.op(Op.IEqual, sh.bool, b, zero)
    if dtype not in SIGNED:
        q = f.op(Op.UDiv, t, a, f.op(Op.Select, t, b_zero, one, b))
        return f.op(Op.Select, t, b_zero, zero, q)
    # Signed: x / 0 is 0 and MIN / -1 wraps to MIN; SPIR-V leaves both undefined.
    minus1 = sh.m.const(t, -1)
    b_m1 = f.op(Op.IEqual, sh.bool, b, minus1)
    safe = f.op(Op.Select, t, f.op(Op.LogicalOr, sh.bool, b_zero, b_m1), one, b)
    q = f.op(Op.SDiv, t, a, safe)
    q = f.op(Op.Select, t, b_m1, f.op(Op.SNegate, t, a), q)
    return sh.canonical(dtype, f.op(Op.Select, t, b_zero, zero, q))


def compare(sh: Shader, opcode: str, dtype: str, a: int, b: int) -> int:
    f = sh.f
    if dtype == "bool":
        if opcode in ("cmp_eq", "cmp_ne"):
            return f.op(Op.LogicalEqual if opcode == "cmp_eq" else Op.LogicalNotEqual,
                        sh.bool, a, b)
        a, b = (f.op(Op.Select, sh.u32, x, sh.u(1), sh.u(0)) for x in (a, b))
        dtype = "uint32"
    if dtype in FLOAT_DTYPES:
        code = {"cmp_eq": Op.FOrdEqual, "cmp_ne": Op.FUnordNotEqual, "cmp_lt": Op.FOrdLessThan,
                "cmp_le": Op.FOrdLessThanEqual, "cmp_gt": Op.FOrdGreaterThan,
                "cmp_ge": Op.FOrdGreaterThanEqual}[opcode]
    elif dtype in SIGNED:
        code = {"cmp_eq": Op.IEqual, "cmp_ne": Op.INotEqual, "cmp_lt": Op.SLessThan,
                "cmp_le": Op.SLessThanEqual, "cmp_gt": Op.SGreaterThan,
                "cmp_ge": Op.SGreaterThanEqual}[opcode]
    else:
        code = {"cmp_eq": Op.IEqual, "cmp_ne": Op.INotEqual, "cmp_lt": Op.ULessThan,
                "cmp_le": Op.ULessThanEqual, "cmp_gt": Op.UGreaterThan,
                "cmp_ge": Op.UGreaterThanEqual}[opcode]
    return f.op(code, sh.bool, a, b)


def cast(sh: Shader, src: str, dst: str, v: int) -> int:
    f = sh.f
    ts, td = sh.reg(src), sh.reg(dst)
    if src == dst:
        return v
    if dst == "bool":
        if src in FLOAT_DTYPES:
            return f.op(Op.FUnordNotEqual, sh.bool, v, sh.const(src, 0.0))
        return f.op(Op.INotEqual, sh.bool, v, sh.const(src, 0))
    if src == "bool":
        return f.op(Op.Select, td, v, sh.const(dst, 1), sh.const(dst, 0))
    if src in FLOAT_DTYPES and dst in FLOAT_DTYPES:
        r = v if ts == td else f.op(Op.FConvert, td, v)
        return normalize(sh, dst, r)
    if src in FLOAT_DTYPES:
        if DTYPES[dst] < 4:  # via int32, then wrap (out-of-range is unspecified)
            return sh.canonical(dst, f.op(Op.ConvertFToS, sh.u32, v))
        return f.op(Op.ConvertFToS if dst in SIGNED else Op.ConvertFToU, td, v)
    if dst in FLOAT_DTYPES:
        r = f.op(Op.ConvertSToF if src in SIGNED else Op.ConvertUToF, td, v)
        return normalize(sh, dst, r)
    if ts != td:  # 32 <-> 64 bits
        v = f.op(Op.SConvert if src in SIGNED and DTYPES[dst] == 8 else Op.UConvert, td, v)
    return sh.canonical(dst, v)


def unary(sh: Shader, opcode: str, dtype: str, x: int) -> int:
    f, t = sh.f, sh.reg(dtype)
    if dtype == "float64" and opcode in ("exp", "log", "sigmoid", "tanh", "erf"):
        return exp_log64(sh, opcode, x)
    if opcode == "neg":
        return normalize(sh, dtype, f.op(Op.FNegate if dtype in FLOAT_DTYPES else Op.SNegate, t, x))
    if opcode == "abs":
        if dtype in FLOAT_DTYPES:
            return f.ext(t, FABS, x)
        return sh.canonical(dtype, f.ext(t, SABS, x)) if dtype in SIGNED else x
    if opcode == "relu":
        return max_min(sh, dtype, x, sh.const(dtype, 0), True)
    if opcode == "not":
        if dtype == "bool":
            return f.op(Op.LogicalNot, t, x)
        return sh.canonical(dtype, f.op(Op.Not, t, x))
    one = sh.const(dtype, 1.0)
    if opcode == "rsqrt":
        r = f.op(Op.FDiv, t, one, f.ext(t, SQRT, x))
    elif opcode == "sigmoid":
        r = f.op(Op.FDiv, t, one, f.op(Op.FAdd, t, one, f.ext(t, EXP, f.op(Op.FNegate, t, x))))
    elif opcode == "tanh":  # clamped: drivers compute tanh from exp, which overflows
        r = f.ext(t, TANH, f.ext(t, FCLAMP, x, sh.const(dtype, -15.0), sh.const(dtype, 15.0)))
        r = f.op(Op.Select, t, f.op(Op.IsNan, sh.bool, x), x, r)
    elif opcode == "erf":
        r = erf(sh, dtype, x)
    else:
        code = {"exp": EXP, "log": LOG, "sqrt": SQRT, "floor": FLOOR, "ceil": CEIL,
                "round": ROUND_EVEN}[opcode]
        r = f.ext(t, code, x)
    return normalize(sh, dtype, r)


def exp_log64(sh: Shader, opcode: str, x: int) -> int:
    from hal_vulkan.spirv.scalar_f64 import erf64, exp64, log64, tanh64

    if opcode == "erf":
        return erf64(sh, x)
    if opcode == "tanh":
        return tanh64(sh, x)
    if opcode == "log":
        return log64(sh, x)
    if opcode == "exp":
        return exp64(sh, x)
    t, one = sh.reg("float64"), sh.const("float64", 1.0)  # sigmoid
    return sh.f.op(Op.FDiv, t, one, sh.f.op(Op.FAdd, t, one, exp64(sh, sh.f.op(Op.FNegate, t, x))))


def erf(sh: Shader, dtype: str, x: int) -> int:
    """Taylor series below |x| = 0.5, Abramowitz & Stegun 7.1.26 above (abs error < 2e-7)."""
    f, t = sh.f, sh.reg(dtype)
    c = lambda v: sh.const(dtype, v)  # noqa: E731
    ax = f.ext(t, FABS, x)
    x2 = f.op(Op.FMul, t, x, x)
    poly = c(1.0 / 216)
    for k in (-1.0 / 42, 1.0 / 10, -1.0 / 3, 1.0):
        poly = f.op(Op.FAdd, t, f.op(Op.FMul, t, poly, x2), c(k))
    small = f.op(Op.FMul, t, f.op(Op.FMul, t, poly, x), c(1.1283791670955126))
    tt = f.op(Op.FDiv, t, c(1.0), f.op(Op.FAdd, t, c(1.0), f.op(Op.FMul, t, c(0.3275911), ax)))
    p = c(1.061405429)
    for k in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        p = f.op(Op.FAdd, t, f.op(Op.FMul, t, p, tt), c(k))
    p = f.op(Op.FMul, t, p, tt)
    big = f.op(Op.FSub, t, c(1.0), f.op(Op.FMul, t, p, f.ext(t, EXP, f.op(Op.FNegate, t, x2))))
    big = f.op(Op.Select, t, f.op(Op.FOrdLessThan, sh.bool, x, c(0.0)),
               f.op(Op.FNegate, t, big), big)
    return f.op(Op.Select, t, f.op(Op.FOrdLessThan, sh.bool, ax, c(0.5)), small, big)


def fpow(sh: Shader, dtype: str, x: int, y: int) -> int:
    """numpy's float power: negative bases with integral exponents, x**0 = 1**y = 1."""
    f, t, b = sh.f, sh.reg(dtype), sh.bool
    c = lambda v: sh.const(dtype, v)  # noqa: E731
    if dtype == "float64":
        from hal_vulkan.spirv.scalar_f64 import pow_magnitude64
        mag = pow_magnitude64(sh, f.ext(t, FABS, x), y)
    else:
        mag = f.ext(t, POW, f.ext(t, FABS, x), y)
    y_int = f.op(Op.FOrdEqual, b, f.ext(t, FLOOR, y), y)
    half = f.op(Op.FMul, t, y, c(0.5))
    y_odd = f.op(Op.LogicalAnd, b, y_int,
                 f.op(Op.FUnordNotEqual, b, f.ext(t, FLOOR, half), half))
    neg = f.op(Op.Select, t, y_odd, f.op(Op.FNegate, t, mag), mag)
    neg = f.op(Op.Select, t, y_int, neg, c(float("nan")))
    r = f.op(Op.Select, t, f.op(Op.FOrdLessThan, b, x, c(0.0)), neg, mag)
    x_zero = f.op(Op.FOrdEqual, b, x, c(0.0))
    zero_case = f.op(Op.Select, t, f.op(Op.FOrdGreaterThan, b, y, c(0.0)), c(0.0), c(float("inf")))
    r = f.op(Op.Select, t, x_zero, zero_case, r)
    one = f.op(Op.LogicalOr, b, f.op(Op.FOrdEqual, b, y, c(0.0)), f.op(Op.FOrdEqual, b, x, c(1.0)))
    r = f.op(Op.Select, t, one, c(1.0), r)  # x**0 and 1**y are 1, NaN included
    return normalize(sh, dtype, r)


def ipow(sh: Shader, dtype: str, x: int, e: int) -> int:
    """Integer power by squaring over every exponent bit; negative exponents per kernel_ir."""
    f, t, b = sh.f, sh.reg(dtype), sh.bool
    bits = 8 * DTYPES[dtype]
    one, zero = sh.const(dtype, 1), sh.const(dtype, 0)
    res = sh.var(t, one)
    base = sh.var(t, x)
    with sh.loop(sh.u(0), sh.u(min(bits, 64))) as i:
        shift = i if t == sh.u32 else f.op(Op.UConvert, t, i)
        bit = f.op(Op.BitwiseAnd, t, f.op(Op.ShiftRightLogical, t, e, shift), one)
        cur = f.load(t, res)
        bb = f.load(t, base)
        f.store(res, f.op(Op.Select, t, f.op(Op.INotEqual, b, bit, zero),
                          f.op(Op.IMul, t, cur, bb), cur))
        f.store(base, f.op(Op.IMul, t, bb, bb))
    r = sh.canonical(dtype, f.load(t, res))
    if dtype not in SIGNED:
        return r
    minus1 = sh.m.const(t, -1)
    e_odd = f.op(Op.INotEqual, b, f.op(Op.BitwiseAnd, t, e, one), zero)
    neg = f.op(Op.Select, t, f.op(Op.IEqual, b, x, one), one, zero)
    neg = f.op(Op.Select, t, f.op(Op.IEqual, b, x, minus1),
               f.op(Op.Select, t, e_odd, minus1, one), neg)
    return f.op(Op.Select, t, f.op(Op.SLessThan, b, e, zero), neg, r)


def emit(sh: Shader, op: ScalarOp, args: list[tuple[int, str]]) -> int:
    """The value of ``op`` applied to ``args`` (register id, dtype)."""
    code, dt = op.opcode, op.dtype
    ids = [a for a, _ in args]
    in_dt = args[0][1] if args else dt
    if code in ("add", "sub", "mul", "div"):
        return binary(sh, code, dt, *ids)
    if code == "pow":
        return fpow(sh, dt, *ids) if dt in FLOAT_DTYPES else ipow(sh, dt, *ids)
    if code in ("max", "min"):
        return max_min(sh, dt, ids[0], ids[1], code == "max")
    if code == "clip":
        return max_min(sh, dt, max_min(sh, dt, ids[0], ids[1], True), ids[2], False)
    if code.startswith("cmp_"):
        return compare(sh, code, in_dt, *ids)
    if code == "select":
        return sh.f.op(Op.Select, sh.reg(dt), *ids)
    if code in ("and", "or"):
        if dt == "bool":
            return sh.f.op(Op.LogicalAnd if code == "and" else Op.LogicalOr, sh.bool, *ids)
        return sh.f.op(Op.BitwiseAnd if code == "and" else Op.BitwiseOr, sh.reg(dt), *ids)
    if code == "cast":
        return cast(sh, in_dt, dt, ids[0])
    return unary(sh, code, dt, ids[0])
