"""The vmvx interpreter's operations: numpy microkernels.

:func:`bind` turns one decoded instruction into a closure ``f(env, c0, c1)``: ``env`` holds the
arrays of the kernel's values for the current chunk (views already sliced to rows
``[c0, c1)`` of the tile axis), so an elementwise op is a single ufunc call with ``out=``.
Named ops (conv, pooling) also get the row range, because they read a halo of input rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from hal_core.errors import ModuleFormatError
from hal_vmvx.bytecode import Instr, Value

Handler = Callable[[list, int, int], None]

_UNARY = {"neg": np.negative, "abs": np.absolute, "exp": np.exp, "log": np.log,
          "sqrt": np.sqrt, "tanh": np.tanh, "floor": np.floor, "ceil": np.ceil,
          "round": np.rint, "not": np.invert}
_BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "max": np.maximum,
           "min": np.minimum, "cmp_eq": np.equal, "cmp_ne": np.not_equal, "cmp_lt": np.less,
           "cmp_le": np.less_equal, "cmp_gt": np.greater, "cmp_ge": np.greater_equal,
           "and": np.bitwise_and, "or": np.bitwise_or}
_REDUCE = {"reduce_sum": np.add, "reduce_prod": np.multiply, "reduce_max": np.maximum,
           "reduce_min": np.minimum}
_ARITY = {**{k: 1 for k in _UNARY}, **{k: 2 for k in _BINARY}, **{k: 1 for k in _REDUCE},
          "copy": 1, "cast": 1, "rsqrt": 1, "sigmoid": 1, "erf": 1, "relu": 1, "div": 2,
          "pow": 2, "clip": 3, "select": 3, "matmul": 2, "pool2d": 1, "argreduce": 1,
          "gather": 2, "softmax": 1}
_NPARAMS = {"matmul": 3, "conv2d": 10, "pool2d": 10, "argreduce": 2, "gather": 1,
            "softmax": 2}


def _bad(ins: Instr, what: str) -> ModuleFormatError:
    return ModuleFormatError(f"malformed vmvx-bytecode payload: instruction {ins.op!r}: {what}")


def _identity(comb: str, dtype: np.dtype):
    if comb == "reduce_sum":
        return dtype.type(0)
    if comb == "reduce_prod":
        return dtype.type(1)
    lowest = comb == "reduce_max"
    if dtype.kind == "b":
        return np.bool_(not lowest)
    if dtype.kind == "f":
        return dtype.type(-np.inf if lowest else np.inf)
    info = np.iinfo(dtype)
    return dtype.type(info.min if lowest else info.max)


def _erf(x: np.ndarray) -> np.ndarray:
    try:
        from scipy.special import erf
    except ImportError:  # exact but slow; scipy is optional
        import math as _m
        # asarray, not .astype: frompyfunc returns a bare float for a 0-d input.
        return np.asarray(np.frompyfunc(_m.erf, 1, 1)(np.asarray(x, np.float64)), np.float64)
    return erf(np.asarray(x, np.float64 if x.dtype == np.float64 else np.float32))


def _int_div(a, b, out) -> None:
    # Truncating division (C semantics); numpy's floor_divide already yields 0 for b == 0.
    rem = np.fmod(a, b)
    np.subtract(a, rem, out=out)
    np.floor_divide(out, b, out=out)


def _int_pow(a, b, out) -> None:
    neg = np.less(b, 0)
    np.power(a, np.maximum(b, 0), out=out)
    if neg.any():
        a_b = np.broadcast_to(a, out.shape)
        odd = np.broadcast_to(np.bitwise_and(b, 1).astype(bool), out.shape)
        inv = np.where(a_b == 1, 1, np.where(a_b == -1, np.where(odd, -1, 1), 0))
        np.copyto(out, inv.astype(out.dtype), where=np.broadcast_to(neg, out.shape))


def bind(ins: Instr, values: Sequence[Value]) -> Handler:
    """The closure running ``ins``; raise ModuleFormatError if it is malformed."""
    op, d, s, p = ins.op, ins.dst, ins.srcs, ins.ints
    if op in _ARITY and len(s) != _ARITY[op] or op == "conv2d" and len(s) not in (2, 3):
        raise _bad(ins, f"expected {_ARITY.get(op, '2 or 3')} sources, found {len(s)}")
    if op in _NPARAMS and len(p) != _NPARAMS[op]:
        raise _bad(ins, f"expected {_NPARAMS[op]} parameters, found {len(p)}")
    dt = np.dtype(values[d].dtype)
    if op in _UNARY:
        uf, (a,) = _UNARY[op], s
        return lambda env, c0, c1: uf(env[a], out=env[d])
    if op in _BINARY:
        uf, (a, b) = _BINARY[op], s
        return lambda env, c0, c1: uf(env[a], env[b], out=env[d])
    if op in ("copy", "cast"):
        (a,) = s
        return lambda env, c0, c1: np.copyto(env[d], env[a], casting="unsafe")
    if op == "div":
        a, b = s
        if dt.kind == "f":
            return lambda env, c0, c1: np.true_divide(env[a], env[b], out=env[d])
        return lambda env, c0, c1: _int_div(env[a], env[b], env[d])
    if op == "pow":
        a, b = s
        if dt.kind == "f":
            return lambda env, c0, c1: np.power(env[a], env[b], out=env[d])
        return lambda env, c0, c1: _int_pow(env[a], env[b], env[d])
    if op in ("rsqrt", "sigmoid") and dt == np.float16:
        # In f32, rounded to f16 once: step by step in f16, exp(-x) overflows below x = -11.09
        # (sigmoid 0 instead of ~1e-5) and each step rounds again.
        (a,) = s
        f32 = np.float32
        if op == "rsqrt":
            return lambda env, c0, c1: np.divide(f32(1), np.sqrt(env[a], dtype=f32),
                                                 out=env[d], casting="same_kind")
        return lambda env, c0, c1: np.divide(f32(1), np.exp(np.negative(env[a], dtype=f32))
                                             + f32(1), out=env[d], casting="same_kind")
    if op == "rsqrt":
        (a,) = s
        one = dt.type(1)

        def rsqrt(env, c0, c1):
            np.sqrt(env[a], out=env[d])
            np.divide(one, env[d], out=env[d])
        return rsqrt
    if op == "sigmoid":
        (a,) = s
        one = dt.type(1)

        def sigmoid(env, c0, c1):
            np.negative(env[a], out=env[d])
            np.exp(env[d], out=env[d])
            np.add(env[d], one, out=env[d])
            np.divide(one, env[d], out=env[d])
        return sigmoid
    if op == "relu":
        (a,) = s
        zero = dt.type(0)
        return lambda env, c0, c1: np.maximum(env[a], zero, out=env[d])
    if op == "erf":
        (a,) = s
        return lambda env, c0, c1: np.copyto(env[d], _erf(env[a]), casting="unsafe")
    if op == "clip":
        x, lo, hi = s

        def clip(env, c0, c1):
            np.maximum(env[x], env[lo], out=env[d])
            np.minimum(env[d], env[hi], out=env[d])
        return clip
    if op == "select":
        c, a, b = s

        def select(env, c0, c1):
            np.copyto(env[d], np.where(env[c], env[a], env[b]))
        return select
    if op in _REDUCE:
        uf, (a,) = _REDUCE[op], s
        accumulate, axes = bool(p[:1] and p[0]), tuple(p[1:])
        if len(set(axes)) != len(axes) or any(not 0 <= x < len(values[a].shape) for x in axes):
            raise _bad(ins, f"reduction axes {axes} for rank {len(values[a].shape)}")
        src_dt = np.dtype(values[a].dtype)
        init, src_init = _identity(op, dt), _identity(op, src_dt)
        if dt == src_dt and not accumulate:
            return lambda env, c0, c1: uf.reduce(env[a], axis=axes, out=env[d], initial=init)
        if dt != src_dt and (op != "reduce_sum" or dt != np.float64 or src_dt.kind != "f"):
            raise _bad(ins, f"a {src_dt.name} reduction into {dt.name}")

        def reduce_into(env, c0, c1):
            # A chunk is reduced in its own type (numpy sums contiguous runs pairwise), then
            # combined with what the earlier chunks left in the (maybe wider) destination.
            if c0 == 0 and dt == src_dt:
                uf.reduce(env[a], axis=axes, out=env[d], initial=init)
                return
            part = uf.reduce(env[a], axis=axes, initial=src_init)
            if c0 == 0:
                np.copyto(env[d], part)
            else:
                uf(env[d], part, out=env[d])
        return reduce_into
    from hal_vmvx import named_microkernels as nm
    if op == "matmul":
        return nm.matmul(d, s, p)
    if op == "conv2d":
        return nm.conv2d(ins, d, s, p, values)
    if op == "pool2d":
        return nm.pool2d(ins, d, s, p, values)
    if op == "argreduce":
        return nm.argreduce(ins, d, s, p, values)
    if op == "gather":
        return nm.gather(ins, d, s, p, values)
    if op == "softmax":
        return nm.softmax(ins, d, s, p, values)
    raise _bad(ins, "unknown operation")


__all__ = ["Handler", "bind"]
