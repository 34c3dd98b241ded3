"""Generic decompositions of the named kernels: a new target runs real modules at once.

A target that lowers :class:`~hal_core.compiler.kernel_ir.GenericKernel` can compile every
named kernel too, before it writes a specialised lowering for each, through::

    d = decompose(kernel)            # None: no decomposition (a GenericKernel, say)
    for step in d.kernels: ...       # GenericKernels, to run in order over the same bindings
    d.scratch_size                   # bytes of scratch they share (0: none)

Contract of a :class:`Decomposition`:

* ``kernels`` run one after another, each over its whole iteration space; a kernel sees every
  write of the kernels before it (a barrier between them). They bind the named kernel's own
  bindings, plus, when ``scratch_size > 0``, binding ``scratch_binding`` (=
  ``binding_count(kernel)``): a scratch area of ``scratch_size`` bytes whose contents on entry
  are undefined. A target declares it with ``VariantEntryPoint.scratch_size`` and gets it from
  buffer planning as that extra binding (see :mod:`hal_core.module.model`).
* Results equal the named kernel's (kernel_ir semantics), up to float rounding order.

A target may compile the steps into one entry point that runs them in order (simplest: one
workgroup running each step over its whole space, as ``tests/compiler/decomposing_target.py``
does), declaring ``scratch_size`` on that entry point.

How each kernel is expressed (all with epilogues folded in):

* matmul: one reduction over ``(*batch, M, N, K)`` (broadcast batch dims read index 0).
* conv2d: padding first (fill the padded input in scratch with 0, copy the input into its
  interior), then one reduction over ``(N, G, O/G, OH, OW, C/G, KH, KW)``; groups are a dim.
* pool2d: the same padding (max: the lowest value; avg: 0, with the extent a ceil-mode window
  may reach), then a max or sum reduction over the window; average divides by a count
  computed from the window position (``IterIndex``), so padding never counts unless asked; a
  ceil-mode window that counts no position gives NaN (0/0), as the reference does.
* softmax: max over the axis into scratch, sum of ``exp(x - max)`` into scratch, then a
  parallel kernel ``exp(x - max) / sum`` (log: ``x - max - log(sum)``); float16 in float32.
* argmax/argmin: the max (min) into scratch, then the smallest index holding it (a NaN
  matches first, as numpy).
* gather: data-dependent addressing is not affine, so each output element is a max-reduction
  over the gathered axis of ``select(index == i, data[i], lowest)``: correct for every dtype
  (NaN and -0.0 included) but O(axis length) per element, a fallback rather than a lowering.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hal_core.compiler import kernel_ir as K

__all__ = ["Decomposition", "decompose"]

I64 = "int64"


@dataclass(frozen=True)
class Decomposition:
    kernels: tuple[K.GenericKernel, ...]
    scratch_size: int = 0
    scratch_binding: int = 0


def decompose(kernel: K.Kernel) -> Decomposition | None:
    """Generic kernels computing the named ``kernel`` (see the module docstring), or None."""
    fn = _DECOMPOSERS.get(type(kernel))
    if fn is None:
        return None
    return fn(kernel, _Scratch(K.binding_count(kernel)))


# ---------------------------------------------------------------------------------------------
# Helpers


class _Scratch:
    """Hands out 64-byte aligned regions of the scratch binding."""

    def __init__(self, binding: int) -> None:
        self.binding = binding
        self.size = 0

    def alloc(self, shape: Sequence[int], dtype: str) -> K.KernelOperand:
        offset = -(-self.size // 64) * 64
        op = K.KernelOperand(self.binding, tuple(shape), dtype, offset)
        self.size = offset + op.byte_size
        return op

    def done(self, kernels: list[K.GenericKernel]) -> Decomposition:
        return Decomposition(tuple(kernels), self.size, self.binding)


class _Body:
    """An SSA body under construction."""

    def __init__(self) -> None:
        self.ops: list[K.ScalarOp] = []

    def op(self, opcode: str, *args: K.ValueRef, dtype: str) -> K.ValueRef:
        self.ops.append(K.ScalarOp(opcode, tuple(args), dtype))
        return K.Result(len(self.ops) - 1)

    def cast(self, v: K.ValueRef, src: str, dst: str) -> K.ValueRef:
        return v if src == dst else self.op("cast", v, dtype=dst)

    def affine(self, e: K.AffineExpr) -> K.ValueRef:
        """``e`` evaluated at the current point, as int64."""
        v: K.ValueRef | None = None
        for d, c in enumerate(e.coeffs):
            if c:
                t = K.IterIndex(d) if c == 1 else self.op("mul", K.IterIndex(d), K.Const(c, I64),
                                                         dtype=I64)
                v = t if v is None else self.op("add", v, t, dtype=I64)
        if v is None:
            return K.Const(e.constant, I64)
        return v if not e.constant else self.op("add", v, K.Const(e.constant, I64), dtype=I64)

    def inline(self, epi: K.Epilogue, acc: K.ValueRef, first_input: int,
               index: Callable[[int], K.ValueRef]) -> list[K.ValueRef]:
        """Append ``epi``'s body (Acc(0) = ``acc``, Input(i) = Input(first_input + i),
        IterIndex(d) = ``index(d)``); return its yields."""
        res: list[K.ValueRef] = []

        def ref(a: K.ValueRef) -> K.ValueRef:
            if isinstance(a, K.Acc):
                return acc
            if isinstance(a, K.Input):
                return K.Input(first_input + a.index)
            if isinstance(a, K.Result):
                return res[a.index]
            if isinstance(a, K.IterIndex):
                return index(a.dim)
            return a

        for op in epi.body:
            args = tuple(ref(a) for a in op.args)
            self.ops.append(dataclasses.replace(op, args=args))
            res.append(K.Result(len(self.ops) - 1))
        return [ref(y) for y in epi.yields]


def _compose(m: K.IndexingMap, out_exprs: Sequence[K.AffineExpr], nd: int) -> K.IndexingMap:
    """A map over the out operand's dims, re-expressed over ``nd`` iteration dims where out dim
    j is ``out_exprs[j]``."""
    exprs = []
    for e in m.exprs:
        coeffs = [0] * nd
        const = e.constant
        for j, c in enumerate(e.coeffs):
            if c:
                const += c * out_exprs[j].constant
                for d in range(nd):
                    coeffs[d] += c * out_exprs[j].coeffs[d]
        exprs.append(K.AffineExpr(tuple(coeffs), const))
    return K.IndexingMap(nd, tuple(exprs))


def _finalize(epi: K.Epilogue | None, acc: str, out: str, out_exprs: Sequence[K.AffineExpr],
              nd: int, pre: Callable[[_Body], K.ValueRef] | None = None,
              pre_inputs: tuple[K.MappedOperand, ...] = (),
              epi_acc: str | None = None) -> K.Epilogue | None:
    """A GenericKernel.finalize applying ``pre`` (on Acc(0)), the named ``epi`` (whose Acc(0)
    has dtype ``epi_acc``, default ``acc``) and the cast to ``out``; None when there is
    nothing to do."""
    if epi is None and pre is None and acc == out:
        return None
    b = _Body()
    v = pre(b) if pre is not None else K.Acc(0)
    inputs = pre_inputs
    if epi is not None:
        v = b.cast(v, acc, epi_acc or acc)
        inputs += tuple(K.MappedOperand(m.operand, _compose(m.map, out_exprs, nd))
                        for m in epi.inputs)
        (v,) = b.inline(epi, v, len(pre_inputs), lambda j: b.affine(out_exprs[j]))
    else:
        v = b.cast(v, acc, out)
    if isinstance(v, K.Acc) or not b.ops:  # yields must be computed values of out's dtype
        v = b.op("cast", v, dtype=out) if acc != out else v
    return K.Epilogue(tuple(b.ops), (v,), inputs)


def _dims(nd: int, *dims: int | None) -> tuple[K.AffineExpr, ...]:
    return tuple(K.AffineExpr.const(0, nd) if d is None else K.AffineExpr.dim(d, nd)
                 for d in dims)


def _lowest(dtype: str) -> K.Const:
    import numpy as np

    if dtype == "bool":
        return K.Const(False, dtype)
    if dtype in K.FLOAT_DTYPES:
        return K.Const(-math.inf, dtype)
    return K.Const(int(np.iinfo(dtype).min), dtype)


def _fill(name: str, target: K.KernelOperand, value: K.Const) -> K.GenericKernel:
    nd = len(target.shape)
    return K.GenericKernel(name, target.shape, ("parallel",) * nd, (),
                           (K.MappedOperand(target, K.IndexingMap.identity(nd)),),
                           (K.ScalarOp("cast", (value,), target.dtype),), (K.Result(0),))


def _pad(name: str, src: K.KernelOperand, scratch: _Scratch, before: tuple[int, int],
         size: tuple[int, int], value: K.Const) -> tuple[list[K.GenericKernel], K.KernelOperand]:
    """Kernels writing ``src`` (NCHW) into a scratch array of spatial ``size`` filled with
    ``value``, at offset ``before``; and that array."""
    n, c, h, w = src.shape
    padded = scratch.alloc((n, c, *size), src.dtype)
    interior = K.IndexingMap(4, (*_dims(4, 0, 1), K.AffineExpr.dim(2, 4, offset=before[0]),
                                 K.AffineExpr.dim(3, 4, offset=before[1])))
    copy = K.GenericKernel(f"{name}_pad_copy", src.shape, ("parallel",) * 4,
                           (K.MappedOperand(src, K.IndexingMap.identity(4)),),
                           (K.MappedOperand(padded, interior),),
                           (K.ScalarOp("cast", (K.Input(0),), src.dtype),), (K.Result(0),))
    return [_fill(f"{name}_pad_fill", padded, value), copy], padded


# ---------------------------------------------------------------------------------------------
# The named kernels


def _matmul(k: K.MatmulKernel, scratch: _Scratch) -> Decomposition:
    out = k.out
    rank = len(out.shape)
    nb = rank - 2
    kk = k.mnk[2]
    nd = rank + 1
    bd, dm, dn, dk = list(range(nb)), nb, nb + 1, nb + 2
    acc = k.acc_dtype or out.dtype

    def batch_exprs(op: K.KernelOperand) -> list[K.AffineExpr]:
        lead = len(op.shape) - 2
        ex = []
        for j in range(lead):
            d = nb - lead + j
            ex.append(K.AffineExpr.dim(d, nd) if op.shape[j] != 1 or out.shape[d] == 1
                      else K.AffineExpr.const(0, nd))
        return ex

    lhs_mk = _dims(nd, dk, dm) if k.transpose_a else _dims(nd, dm, dk)
    rhs_kn = _dims(nd, dn, dk) if k.transpose_b else _dims(nd, dk, dn)
    lhs = K.MappedOperand(k.lhs, K.IndexingMap(nd, (*batch_exprs(k.lhs), *lhs_mk)))
    rhs = K.MappedOperand(k.rhs, K.IndexingMap(nd, (*batch_exprs(k.rhs), *rhs_kn)))
    out_exprs = _dims(nd, *bd, dm, dn)
    b = _Body()
    prod = b.op("mul", b.cast(K.Input(0), k.lhs.dtype, acc), b.cast(K.Input(1), k.rhs.dtype, acc),
                dtype=acc)
    kern = K.GenericKernel(
        f"{k.name}_generic", (*out.shape, kk), ("parallel",) * rank + ("reduction",),
        (lhs, rhs), (K.MappedOperand(out, K.IndexingMap(nd, out_exprs)),), tuple(b.ops),
        (prod,), ("sum",), _finalize(k.epilogue, acc, out.dtype, out_exprs, nd))
    return scratch.done([kern])


def _conv2d(k: K.Conv2dKernel, scratch: _Scratch) -> Decomposition:
    nb, _, h, w = k.input.shape
    o, cg, kh, kw = k.filter.shape
    _, _, oh, ow = k.out.shape
    g = k.groups
    og = o // g
    top, left, bottom, right = k.padding
    steps: list[K.GenericKernel] = []
    src = k.input
    if any(k.padding):
        steps, src = _pad(k.name, k.input, scratch, (top, left),
                          (h + top + bottom, w + left + right), K.Const(0, k.input.dtype))
    acc = k.acc_dtype or k.out.dtype
    nd = 8  # N, G, OG, OH, OW | CG, KH, KW
    sh, sw = k.strides
    dh, dw = k.dilation
    inp = K.IndexingMap(nd, (K.AffineExpr.dim(0, nd),
                             K.AffineExpr((0, cg, 0, 0, 0, 1, 0, 0)),
                             K.AffineExpr((0, 0, 0, sh, 0, 0, dh, 0)),
                             K.AffineExpr((0, 0, 0, 0, sw, 0, 0, dw))))
    o_expr = K.AffineExpr((0, og, 1, 0, 0, 0, 0, 0))
    filt = K.IndexingMap(nd, (o_expr, *_dims(nd, 5, 6, 7)))
    out_exprs = (K.AffineExpr.dim(0, nd), o_expr, *_dims(nd, 3, 4))
    b = _Body()
    prod = b.op("mul", b.cast(K.Input(0), src.dtype, acc), b.cast(K.Input(1), k.filter.dtype, acc),
                dtype=acc)
    pre = pre_inputs = None
    if k.bias is not None:
        bias = k.bias

        def pre(fb: _Body) -> K.ValueRef:
            return fb.op("add", K.Acc(0), fb.cast(K.Input(0), bias.dtype, acc), dtype=acc)
        pre_inputs = (K.MappedOperand(bias, K.IndexingMap(nd, (o_expr,))),)
    steps.append(K.GenericKernel(
        f"{k.name}_generic", (nb, g, og, oh, ow, cg, kh, kw), ("parallel",) * 5 + ("reduction",) * 3,
        (K.MappedOperand(src, inp), K.MappedOperand(k.filter, filt)),
        (K.MappedOperand(k.out, K.IndexingMap(nd, out_exprs)),), tuple(b.ops), (prod,),
        ("sum",), _finalize(k.epilogue, acc, k.out.dtype, out_exprs, nd, pre,
                            pre_inputs or ())))
    return scratch.done(steps)


def _pool2d(k: K.Pool2dKernel, scratch: _Scratch) -> Decomposition:
    nb, c, h, w = k.input.shape
    _, _, oh, ow = k.out.shape
    kh, kw = k.kernel_size
    sh, sw = k.strides
    top, left, bottom, right = k.padding
    # Ceil-mode windows may reach past the padded input: pad to where the last one ends.
    ph = max(h + top + bottom, (oh - 1) * sh + kh)
    pw = max(w + left + right, (ow - 1) * sw + kw)
    dt = k.input.dtype
    is_max = k.kind == "max"
    steps, src = _pad(k.name, k.input, scratch, (top, left), (ph, pw),
                      _lowest(dt) if is_max else K.Const(0, dt))
    nd = 6  # N, C, OH, OW | KH, KW
    win = K.IndexingMap(nd, (*_dims(nd, 0, 1), K.AffineExpr((0, 0, sh, 0, 1, 0)),
                             K.AffineExpr((0, 0, 0, sw, 0, 1))))
    out_exprs = _dims(nd, 0, 1, 2, 3)
    b = _Body()
    if is_max:
        acc = dt
        y = b.cast(K.Input(0), dt, acc)
        pre = None
    else:
        acc = "float32" if dt == "float16" else ("float64" if dt not in K.FLOAT_DTYPES else dt)
        y = b.cast(K.Input(0), dt, acc)
        lo_h, hi_h = (0, top + h + bottom) if k.count_include_pad else (top, top + h)
        lo_w, hi_w = (0, left + w + right) if k.count_include_pad else (left, left + w)

        def extent(fb: _Body, dim: int, stride: int, size: int, lo: int, hi: int) -> K.ValueRef:
            start = fb.op("mul", K.IterIndex(dim), K.Const(stride, I64), dtype=I64)
            end = fb.op("min", fb.op("add", start, K.Const(size, I64), dtype=I64),
                        K.Const(hi, I64), dtype=I64)
            first = fb.op("max", start, K.Const(lo, I64), dtype=I64)
            return fb.op("max", fb.op("sub", end, first, dtype=I64), K.Const(0, I64), dtype=I64)

        def pre(fb: _Body) -> K.ValueRef:
            count = fb.op("mul", extent(fb, 2, sh, kh, lo_h, hi_h),
                          extent(fb, 3, sw, kw, lo_w, hi_w), dtype=I64)
            return fb.op("div", K.Acc(0), fb.cast(count, I64, acc), dtype=acc)
    if not b.ops:
        y = b.op("cast", y, dtype=acc)  # a body needs one op; cast to its own type is a copy
    steps.append(K.GenericKernel(
        f"{k.name}_generic", (nb, c, oh, ow, kh, kw), ("parallel",) * 4 + ("reduction",) * 2,
        (K.MappedOperand(src, win),), (K.MappedOperand(k.out, K.IndexingMap(nd, out_exprs)),),
        tuple(b.ops), (y,), ("max" if is_max else "sum",),
        _finalize(k.epilogue, acc, k.out.dtype, out_exprs, nd, pre, epi_acc=k.out.dtype)))
    return scratch.done(steps)


def _reduced(shape: tuple[int, ...], axis: int) -> tuple[int, ...]:
    return shape[:axis] + (1,) + shape[axis + 1:]


def _axis_reduction(name: str, src: K.MappedOperand, dst: K.KernelOperand, shape, axis: int,
                    body: _Body, y: K.ValueRef, comb: str,
                    extra: tuple[K.MappedOperand, ...] = (),
                    finalize: K.Epilogue | None = None) -> K.GenericKernel:
    nd = len(shape)
    types = tuple("reduction" if d == axis else "parallel" for d in range(nd))
    out_map = K.IndexingMap(nd, tuple(K.AffineExpr.const(0, nd) if d == axis else
                                      K.AffineExpr.dim(d, nd) for d in range(nd)))
    if len(dst.shape) != nd:  # an output without the reduced dim
        out_map = K.IndexingMap(nd, tuple(e for d, e in enumerate(out_map.exprs) if d != axis))
    return K.GenericKernel(name, tuple(shape), types, (src, *extra),
                           (K.MappedOperand(dst, out_map),), tuple(body.ops), (y,), (comb,),
                           finalize)


def _softmax(k: K.SoftmaxKernel, scratch: _Scratch) -> Decomposition:
    shape, axis, dt = k.input.shape, k.axis, k.input.dtype
    nd = len(shape)
    acc = "float32" if dt == "float16" else dt
    ident = K.IndexingMap.identity(nd)
    x = K.MappedOperand(k.input, ident)
    mx = scratch.alloc(_reduced(shape, axis), acc)
    sm = scratch.alloc(_reduced(shape, axis), acc)
    bcast = K.IndexingMap(nd, tuple(K.AffineExpr.const(0, nd) if d == axis else
                                    K.AffineExpr.dim(d, nd) for d in range(nd)))
    b1 = _Body()
    y1 = b1.op("cast", K.Input(0), dtype=acc)
    k1 = _axis_reduction(f"{k.name}_max", x, mx, shape, axis, b1, y1, "max")
    b2 = _Body()
    y2 = b2.op("exp", b2.op("sub", b2.cast(K.Input(0), dt, acc), K.Input(1), dtype=acc),
               dtype=acc)
    k2 = _axis_reduction(f"{k.name}_sum", x, sm, shape, axis, b2, y2, "sum",
                         (K.MappedOperand(mx, bcast),))
    b3 = _Body()
    shifted = b3.op("sub", b3.cast(K.Input(0), dt, acc), K.Input(1), dtype=acc)
    if k.log:
        v = b3.op("sub", shifted, b3.op("log", K.Input(2), dtype=acc), dtype=acc)
    else:
        v = b3.op("div", b3.op("exp", shifted, dtype=acc), K.Input(2), dtype=acc)
    inputs = (x, K.MappedOperand(mx, bcast), K.MappedOperand(sm, bcast))
    v = b3.cast(v, acc, k.out.dtype)  # the epilogue's Acc(0) has the output's dtype
    if k.epilogue is not None:
        inputs += tuple(k.epilogue.inputs)  # the epilogue's index space is the output's: ident
        (v,) = b3.inline(k.epilogue, v, 3, K.IterIndex)
    k3 = K.GenericKernel(f"{k.name}_normalize", shape, ("parallel",) * nd, inputs,
                         (K.MappedOperand(k.out, ident),), tuple(b3.ops), (v,))
    return scratch.done([k1, k2, k3])


def _argreduce(k: K.ArgReduceKernel, scratch: _Scratch) -> Decomposition:
    shape, axis, dt = k.input.shape, k.axis, k.input.dtype
    nd = len(shape)
    comb = "max" if k.kind == "argmax" else "min"
    x = K.MappedOperand(k.input, K.IndexingMap.identity(nd))
    best = scratch.alloc(_reduced(shape, axis), dt)
    b1 = _Body()
    y1 = b1.op("cast", K.Input(0), dtype=dt)
    k1 = _axis_reduction(f"{k.name}_{comb}", x, best, shape, axis, b1, y1, comb)
    bcast = K.IndexingMap(nd, tuple(K.AffineExpr.const(0, nd) if d == axis else
                                    K.AffineExpr.dim(d, nd) for d in range(nd)))
    b2 = _Body()
    hit = b2.op("cmp_eq", K.Input(0), K.Input(1), dtype="bool")
    if dt in K.FLOAT_DTYPES:  # NaN wins (max/min propagate it): match the first NaN
        hit = b2.op("or", hit, b2.op("cmp_ne", K.Input(0), K.Input(0), dtype="bool"),
                    dtype="bool")
    idx = b2.op("select", hit, K.IterIndex(axis), K.Const(shape[axis], I64), dtype=I64)
    fin = None
    if k.out.dtype != I64:
        fin = K.Epilogue((K.ScalarOp("cast", (K.Acc(0),), k.out.dtype),), (K.Result(0),))
    k2 = _axis_reduction(f"{k.name}_index", x, k.out, shape, axis, b2, idx, "min",
                         (K.MappedOperand(best, bcast),), fin)
    return scratch.done([k1, k2])


def _gather(k: K.GatherKernel, scratch: _Scratch) -> Decomposition:
    data, idx, out = k.data, k.indices, k.out
    axis = k.axis
    n = data.shape[axis]
    ri = len(idx.shape)
    rank = len(out.shape)
    nd = rank + 1
    r = rank  # the reduction dim: position along the gathered axis
    dmap = K.IndexingMap(nd, tuple(
        [K.AffineExpr.dim(d, nd) for d in range(axis)] + [K.AffineExpr.dim(r, nd)]
        + [K.AffineExpr.dim(axis + ri + j, nd) for j in range(len(data.shape) - axis - 1)]))
    imap = K.IndexingMap(nd, tuple(K.AffineExpr.dim(axis + j, nd) for j in range(ri)))
    out_exprs = _dims(nd, *range(rank))
    b = _Body()
    i = b.cast(K.Input(1), idx.dtype, I64)
    i = b.op("select", b.op("cmp_lt", i, K.Const(0, I64), dtype="bool"),
             b.op("add", i, K.Const(n, I64), dtype=I64), i, dtype=I64)
    i = b.op("min", b.op("max", i, K.Const(0, I64), dtype=I64), K.Const(max(n - 1, 0), I64),
             dtype=I64)
    hit = b.op("cmp_eq", i, K.IterIndex(r), dtype="bool")
    y = b.op("select", hit, K.Input(0), _lowest(data.dtype), dtype=data.dtype)
    kern = K.GenericKernel(
        f"{k.name}_generic", (*out.shape, n), ("parallel",) * rank + ("reduction",),
        (K.MappedOperand(data, dmap), K.MappedOperand(idx, imap)),
        (K.MappedOperand(out, K.IndexingMap(nd, out_exprs)),), tuple(b.ops), (y,), ("max",),
        _finalize(k.epilogue, data.dtype, out.dtype, out_exprs, nd))
    return scratch.done([kern])


_DECOMPOSERS: dict[type, Callable[..., Decomposition]] = {
    K.MatmulKernel: _matmul,
    K.Conv2dKernel: _conv2d,
    K.Pool2dKernel: _pool2d,
    K.SoftmaxKernel: _softmax,
    K.ArgReduceKernel: _argreduce,
    K.GatherKernel: _gather,
}
