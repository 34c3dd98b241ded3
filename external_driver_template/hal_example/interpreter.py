"""Runs ``example-program`` kernels: the example device's "hardware", written with numpy.

A workgroup evaluates its tile of the iteration space at once: every operand becomes a strided
numpy view of its binding built from the access descriptor (no copy), the SSA body runs as
numpy array operations broadcast over the tile, reductions combine along the reduction dims and
the results are stored through the outputs' views. The scalar semantics are the kernel IR's
(hal_core/compiler/kernel_ir.py): integer division truncates and gives 0 for a zero divisor,
integers wrap, float16 math is done in float32 and rounded once per op.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from hal_core.errors import HalRuntimeError
from hal_example.program import Access, Body, ProgramKernel, Stage

_erf = np.frompyfunc(math.erf, 1, 1)


def _int_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    safe = np.where(b == 0, 1, b).astype(b.dtype)
    q = a // safe
    q = q + ((a - q * safe != 0) & ((a < 0) != (safe < 0))).astype(q.dtype)  # floor -> trunc
    return np.where(b == 0, 0, q)


def _int_pow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    neg = b < 0
    r = np.power(a, np.where(neg, 0, b).astype(b.dtype))
    if not neg.any():
        return r
    # x ** -e truncated: 1 for x == 1, +-1 for x == -1, 0 otherwise.
    odd = (b % 2) != 0
    small = np.where(a == 1, 1, np.where(a == -1, np.where(odd, -1, 1), 0)).astype(r.dtype)
    return np.where(neg, small, r)


_UNARY = {"neg": np.negative, "abs": np.absolute, "exp": np.exp, "log": np.log,
          "sqrt": np.sqrt, "tanh": np.tanh, "floor": np.floor, "ceil": np.ceil, "round": np.rint,
          "not": np.invert, "rsqrt": lambda x: 1 / np.sqrt(x),
          "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
          "relu": lambda x: np.maximum(x, np.zeros((), x.dtype)),
          "erf": lambda x: _erf(x.astype(np.float64)).astype(np.float64)}
_BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "max": np.maximum,
           "min": np.minimum, "and": np.bitwise_and, "or": np.bitwise_or,
           "cmp_eq": np.equal, "cmp_ne": np.not_equal, "cmp_lt": np.less,
           "cmp_le": np.less_equal, "cmp_gt": np.greater, "cmp_ge": np.greater_equal}


def scalar_op(opcode: str, dtype: str, args: list[np.ndarray]) -> np.ndarray:
    """One body op over numpy arrays (broadcasting), with the kernel IR's semantics."""
    if opcode == "cast":
        return args[0].astype(dtype)
    if opcode == "select":
        return np.where(args[0], args[1], args[2]).astype(dtype)
    if dtype == "float16" or (opcode.startswith("cmp_") and args[0].dtype == np.float16):
        args = [a.astype(np.float32) for a in args]
    if opcode in _BINARY:
        r = _BINARY[opcode](args[0], args[1])
    elif opcode in _UNARY:
        r = _UNARY[opcode](args[0])
    elif opcode == "div":
        r = args[0] / args[1] if args[0].dtype.kind == "f" else _int_div(args[0], args[1])
    elif opcode == "pow":
        r = np.power(args[0], args[1]) if args[0].dtype.kind == "f" else _int_pow(*args)
    elif opcode == "clip":
        r = np.minimum(np.maximum(args[0], args[1]), args[2])
    else:  # program.decode admits only kernel IR opcodes
        raise HalRuntimeError(f"example interpreter has no opcode {opcode!r}")
    return np.asarray(r).astype(dtype, copy=False)


def _identity(combiner: str, dtype: np.dtype) -> Any:
    if combiner == "sum":
        return 0
    if combiner == "prod":
        return 1
    if dtype.kind == "f":
        return -np.inf if combiner == "max" else np.inf
    if dtype.kind == "b":
        return combiner == "min"
    info = np.iinfo(dtype)
    return info.min if combiner == "max" else info.max


_REDUCE = {"sum": np.add, "prod": np.multiply, "max": np.maximum, "min": np.minimum}


def view(binding: np.ndarray, a: Access, shape: tuple[int, ...], start: tuple[int, ...],
         writable: bool) -> np.ndarray:
    """The operand ``a`` over the box ``start + [0, shape)`` of the space, as a numpy view."""
    if 0 in shape:
        return np.empty(shape, a.dtype)
    offset = a.offset + sum(s * p for s, p in zip(a.strides, start))
    strides = tuple(0 if n == 1 else s for s, n in zip(a.strides, shape))
    arr = np.ndarray(shape, a.dtype, buffer=binding, offset=offset, strides=strides)
    if not writable:
        arr.flags.writeable = False
    return arr


class Workgroup:
    """The evaluation of one stage over one tile (``start``, ``shape``) of its space."""

    def __init__(self, st: Stage, memory: Sequence[np.ndarray], scratch: Sequence[np.ndarray],
                 start: tuple[int, ...], shape: tuple[int, ...]) -> None:
        self.st, self.memory, self.scratch = st, memory, scratch
        self.start, self.shape = start, shape

    def operand(self, index: int, shape: tuple[int, ...], writable: bool = False) -> np.ndarray:
        a = self.st.operands[index]
        memory = self.memory[a.binding] if a.binding >= 0 else self.scratch[-1 - a.binding]
        return view(memory, a, shape, self.start, writable)

    def evaluate(self, body: Body, shape: tuple[int, ...], accs: list[np.ndarray]) -> list:
        inputs = [self.operand(i, shape) for i in body.inputs]
        values: list[np.ndarray] = []

        def get(ref: tuple) -> np.ndarray:
            kind = ref[0]
            if kind == "in":
                return inputs[ref[1]]
            if kind == "val":
                return values[ref[1]]
            if kind == "const":
                return np.asarray(ref[1]).astype(ref[2])
            if kind == "acc":
                return accs[ref[1]]
            d = ref[1]
            idx = np.arange(self.start[d], self.start[d] + shape[d], dtype=np.int64)
            return idx.reshape([-1 if i == d else 1 for i in range(len(shape))])

        for opcode, dtype, *refs in body.code:
            values.append(scalar_op(opcode, dtype, [get(r) for r in refs]))
        # A yield that is an input view is copied: an output may alias that input.
        return [np.array(get(y)) if y[0] == "in" else get(y) for y in body.yields]

    def run(self) -> None:
        st, shape = self.st, self.shape
        results = self.evaluate(st.body, shape, [])
        out_shape = shape
        if st.reduce:
            out_shape = tuple(1 if d in st.reduce else n for d, n in enumerate(shape))
            accs = []
            for value, combiner in zip(results, st.combiners):
                value = np.broadcast_to(value, shape)
                dtype = value.dtype
                wide = np.float32 if dtype == np.float16 else dtype
                acc = _REDUCE[combiner].reduce(value, axis=st.reduce, keepdims=True, dtype=wide,
                                               initial=_identity(combiner, np.dtype(wide)))
                accs.append(acc.astype(dtype, copy=False))
            results = accs
        if st.final is not None:
            results = self.evaluate(st.final, out_shape, results)
        for o, value in zip(st.outputs, results):
            self.operand(o, out_shape, writable=True)[...] = value


def run_kernel(k: ProgramKernel, first: int, last: int, memory: Sequence[np.ndarray]) -> None:
    """Run workgroups ``[first, last)`` of ``k`` on 1-D uint8 arrays of device ``memory``."""
    scratch = [np.empty(n, np.uint8) for n in k.scratch]
    for w in range(first, last):
        for i, st in enumerate(k.stages):
            start = [0] * len(st.space)
            shape = list(st.space)
            if k.tile_dim is not None:
                d = k.tile_dim
                start[d] = w * k.tile
                shape[d] = min(k.tile, st.space[d] - start[d])
            try:
                with np.errstate(all="ignore"):
                    Workgroup(st, memory, scratch, tuple(start), tuple(shape)).run()
            except (ValueError, TypeError, IndexError) as e:
                # numpy refuses a view that would reach outside its memory: a payload or
                # binding that does not match (never memory corruption).
                raise HalRuntimeError(
                    f"example kernel {k.name!r} workgroup {w} stage {i}: {e}; the bound buffers "
                    f"are smaller than the kernel's operands, or the payload is corrupt") from e
