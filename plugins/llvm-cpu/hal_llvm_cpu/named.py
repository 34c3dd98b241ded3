"""Named kernels -> LLVM IR: matmul (any dtype; f32 goes to :mod:`hal_llvm_cpu.gemm`), conv2d,
pool2d, argreduce, gather, softmax. Each splits its output rows over workgroups; epilogues are
applied per element before the store.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from llvmlite import ir

from hal_core.compiler import kernel_ir as K
from hal_llvm_cpu.codegen import (
    FAST,
    I64,
    Func,
    Operand,
    cast,
    const,
    emit_epilogue,
    epilogue_operands,
    i64,
    identity,
    is_float,
    is_signed,
    ll,
    minmax,
)
from hal_llvm_cpu.generic import workgroups

STRIP = 64


def compute_dtype(dtype: str) -> str:
    return "float32" if dtype == "float16" else dtype


def _madd(f: Func, dt: str, acc: ir.Value, a: ir.Value, c: ir.Value, reorder: bool
          ) -> ir.Value:
    b = f.b
    if is_float(dt):
        flags = FAST if reorder else ("contract",)
        return b.fadd(acc, b.fmul(a, c, flags=("contract",)), flags=flags)
    if dt == "bool":
        return b.or_(acc, b.and_(a, c))
    return b.add(acc, b.mul(a, c))


def rows_loop(f: Func, rows: int, chunk: int, first: ir.Value, end: ir.Value,
              body: Callable[[ir.Value], None]) -> None:
    b = f.b
    lo = b.mul(first, i64(chunk))
    hi = f.min64(b.mul(end, i64(chunk)), i64(rows))
    f.loop(lo, hi, body, name="row")


def unflatten(f: Func, flat: ir.Value, sizes: Sequence[int]) -> list[ir.Value]:
    out = []
    for n in reversed(sizes):
        out.append(f.b.urem(flat, i64(n)))
        flat = f.b.udiv(flat, i64(n))
    return out[::-1]


def _store_out(f: Func, k, ptrs, out: Operand, epi_ops, coords, acc, acc_dt) -> None:
    val = emit_epilogue(f, k.epilogue, ptrs, coords, [acc], [acc_dt], [k.out.dtype], epi_ops)[0]
    out.store(coords, val)


# ---------------------------------------------------------------------------------------------
# matmul


def matmul_plan(k: K.MatmulKernel) -> tuple[int, int]:
    m, n, kk = k.mnk
    rows = math.prod(k.out.shape[:-1])
    return workgroups(rows, max(1, n * kk))


def _batch_index(op: K.KernelOperand, batch: list[ir.Value], out_batch: Sequence[int]
                 ) -> list[ir.Value | int]:
    nb = len(op.shape) - 2
    lead = len(out_batch) - nb
    return [0 if op.shape[i] == 1 else batch[lead + i] for i in range(nb)]


def lower_matmul(f: Func, k: K.MatmulKernel, ptrs: Sequence[ir.Value], first: ir.Value,
                 end: ir.Value) -> None:
    b = f.b
    m_, n_, kk = k.mnk
    acc_dt = k.acc_dtype or k.out.dtype
    cdt = compute_dtype(acc_dt)
    out_batch = k.out.shape[:-2]
    _, chunk = matmul_plan(k)
    rows = math.prod(k.out.shape[:-1])
    A, B = Operand.dense(f, ptrs, k.lhs), Operand.dense(f, ptrs, k.rhs)
    out = Operand.dense(f, ptrs, k.out)
    epi_ops = epilogue_operands(f, k.epilogue, ptrs)

    def a_at(bi, m, kx):
        return cast(f, A.load(bi + ([kx, m] if k.transpose_a else [m, kx])), k.lhs.dtype, cdt)

    def b_at(bi, kx, n):
        return cast(f, B.load(bi + ([n, kx] if k.transpose_b else [kx, n])), k.rhs.dtype, cdt)

    def finish(coords, acc):
        _store_out(f, k, ptrs, out, epi_ops, coords, cast(f, acc, cdt, acc_dt), acc_dt)

    def row(r: ir.Value) -> None:
        idx = unflatten(f, r, k.out.shape[:-1])
        batch, m = idx[:-1], idx[-1]
        ba, bb = _batch_index(k.lhs, batch, out_batch), _batch_index(k.rhs, batch, out_batch)
        if k.transpose_b:   # rows of B are contiguous along k: a dot product per element
            def elem(n):
                acc = f.var(ll(cdt), const(cdt, 0))
                f.loop(0, kk, lambda x: b.store(
                    _madd(f, cdt, b.load(acc), a_at(ba, m, x), b_at(bb, x, n), True), acc),
                    name="k")
                finish(batch + [m, n], b.load(acc))
            f.loop(0, n_, elem, name="n")
            return
        strip = f.array(ll(cdt), STRIP)

        def block(n0):
            n1 = f.min64(b.add(n0, i64(STRIP)), i64(n_))
            f.loop(n0, n1, lambda n: b.store(const(cdt, 0), b.gep(
                strip, [b.sub(n, n0)], source_etype=ll(cdt))), name="z")

            def kstep(x):
                a = a_at(ba, m, x)

                def lane(n):
                    p = b.gep(strip, [b.sub(n, n0)], source_etype=ll(cdt))
                    b.store(_madd(f, cdt, b.load(p, typ=ll(cdt)), a, b_at(bb, x, n), False), p)
                f.loop(n0, n1, lane, name="lane")
            f.loop(0, kk, kstep, name="k")
            f.loop(n0, n1, lambda n: finish(batch + [m, n], b.load(
                b.gep(strip, [b.sub(n, n0)], source_etype=ll(cdt)), typ=ll(cdt))), name="st")
        f.loop(0, n_, block, step=STRIP, name="nb")

    rows_loop(f, rows, chunk, first, end, row)


# ---------------------------------------------------------------------------------------------
# conv2d


def conv_plan(k: K.Conv2dKernel) -> tuple[int, int]:
    n, o, oh, ow = k.out.shape
    c, kh, kw = k.filter.shape[1:]
    return workgroups(n * o * oh, max(1, ow * c * kh * kw))


def lower_conv2d(f: Func, k: K.Conv2dKernel, ptrs: Sequence[ir.Value], first: ir.Value,
                 end: ir.Value) -> None:
    """Per output row: accumulate over (c, ky, kx) into a strip along x; the x range where the
    input column is inside the image is computed per kx, so the inner loop has no branches."""
    b = f.b
    N, O, OH, OW = k.out.shape
    _, C, H, W = k.input.shape
    CG, KH, KW = k.filter.shape[1:]
    og = O // k.groups
    sh, sw = k.strides
    dh, dw = k.dilation
    top, left = k.padding[0], k.padding[1]
    acc_dt = k.acc_dtype or k.out.dtype
    cdt = compute_dtype(acc_dt)
    _, chunk = conv_plan(k)
    X, Wt, out = (Operand.dense(f, ptrs, op) for op in (k.input, k.filter, k.out))
    bias = Operand.dense(f, ptrs, k.bias) if k.bias is not None else None
    epi_ops = epilogue_operands(f, k.epilogue, ptrs)
    strip = f.array(ll(cdt), STRIP)

    def row(r: ir.Value) -> None:
        n, o, oy = unflatten(f, r, (N, O, OH))
        g = b.udiv(o, i64(og))

        def block(x0):
            x1 = f.min64(b.add(x0, i64(STRIP)), i64(OW))
            init = const(cdt, 0)
            f.loop(x0, x1, lambda x: b.store(init, b.gep(strip, [b.sub(x, x0)],
                                                         source_etype=ll(cdt))), name="z")

            def chan(cg):
                c = b.add(b.mul(g, i64(CG)), cg)

                def ky_(ky):
                    iy = b.sub(b.add(b.mul(oy, i64(sh)), b.mul(ky, i64(dh))), i64(top))
                    inside = b.and_(b.icmp_signed(">=", iy, i64(0)),
                                    b.icmp_signed("<", iy, i64(H)))
                    with b.if_then(inside):
                        for kx in range(KW):
                            off = kx * dw - left
                            # x*sw + off in [0, W)  <=>  x in [ceil(-off/sw), ceil((W-off)/sw))
                            xlo = max(0, -(off // sw))
                            xhi = -(-(W - off) // sw)
                            lo = f.max64(x0, i64(xlo))
                            hi = f.min64(x1, i64(max(0, xhi)))
                            wv = cast(f, Wt.load([o, cg, ky, kx]), k.filter.dtype, cdt)

                            def lane(x, off=off, wv=wv):
                                xv = cast(f, X.load([n, c, iy, b.add(b.mul(x, i64(sw)),
                                                                     i64(off))]),
                                          k.input.dtype, cdt)
                                p = b.gep(strip, [b.sub(x, x0)], source_etype=ll(cdt))
                                b.store(_madd(f, cdt, b.load(p, typ=ll(cdt)), xv, wv, False), p)
                            f.loop(lo, hi, lane, name="x")
                f.loop(0, KH, ky_, name="ky")
            f.loop(0, CG, chan, name="c")

            def st(x):
                acc = b.load(b.gep(strip, [b.sub(x, x0)], source_etype=ll(cdt)), typ=ll(cdt))
                if bias is not None:
                    bv = cast(f, bias.load([o]), k.bias.dtype, cdt)
                    acc = b.fadd(acc, bv) if is_float(cdt) else b.add(acc, bv)
                _store_out(f, k, ptrs, out, epi_ops, [n, o, oy, x], cast(f, acc, cdt, acc_dt),
                           acc_dt)
            f.loop(x0, x1, st, name="st")
        f.loop(0, OW, block, step=STRIP, name="xb")

    rows_loop(f, N * O * OH, chunk, first, end, row)


# ---------------------------------------------------------------------------------------------
# pooling


def pool_plan(k: K.Pool2dKernel) -> tuple[int, int]:
    n, c, oh, ow = k.out.shape
    return workgroups(n * c * oh, max(1, ow * math.prod(k.kernel_size)))


def lower_pool2d(f: Func, k: K.Pool2dKernel, ptrs: Sequence[ir.Value], first: ir.Value,
                 end: ir.Value) -> None:
    b = f.b
    N, C, OH, OW = k.out.shape
    H, W = k.input.shape[2:]
    KH, KW = k.kernel_size
    sh, sw = k.strides
    top, left, bottom, right = k.padding
    dt = k.input.dtype
    avg = k.kind == "avg"
    cdt = "float64" if avg else dt
    _, chunk = pool_plan(k)
    X, out = Operand.dense(f, ptrs, k.input), Operand.dense(f, ptrs, k.out)
    epi_ops = epilogue_operands(f, k.epilogue, ptrs)

    def row(r: ir.Value) -> None:
        n, c, oy = unflatten(f, r, (N, C, OH))
        y0 = b.sub(b.mul(oy, i64(sh)), i64(top))

        def elem(ox):
            x0 = b.sub(b.mul(ox, i64(sw)), i64(left))
            acc = f.var(ll(cdt), const(cdt, 0) if avg else identity("max", dt))
            # Window part inside the image; the divisor for count_include_pad counts the part
            # inside the padded image.
            ylo, yhi = f.max64(y0, i64(0)), f.min64(b.add(y0, i64(KH)), i64(H))
            xlo, xhi = f.max64(x0, i64(0)), f.min64(b.add(x0, i64(KW)), i64(W))

            def yy(y):
                def xx(x):
                    v = cast(f, X.load([n, c, y, x]), dt, cdt)
                    if avg:
                        b.store(b.fadd(b.load(acc), v), acc)
                    else:
                        b.store(minmax(f, "max", dt, b.load(acc), v), acc)
                f.loop(xlo, xhi, xx, name="wx")
            f.loop(ylo, yhi, yy, name="wy")
            v = b.load(acc)
            if avg:
                if k.count_include_pad:
                    ph0, ph1 = f.max64(y0, i64(-top)), f.min64(b.add(y0, i64(KH)), i64(H + bottom))
                    pw0, pw1 = f.max64(x0, i64(-left)), f.min64(b.add(x0, i64(KW)), i64(W + right))
                else:
                    ph0, ph1, pw0, pw1 = ylo, yhi, xlo, xhi
                hcount = f.max64(b.sub(ph1, ph0), i64(0))
                wcount = f.max64(b.sub(pw1, pw0), i64(0))
                div = b.sitofp(b.mul(hcount, wcount), ll("float64"))
                v = cast(f, b.fdiv(v, div), "float64", dt)
            _store_out(f, k, ptrs, out, epi_ops, [n, c, oy, ox], v, dt)
        f.loop(0, OW, elem, name="ox")

    rows_loop(f, N * C * OH, chunk, first, end, row)


# ---------------------------------------------------------------------------------------------
# argmax / argmin


def _outer_inner(shape: Sequence[int], axis: int) -> tuple[int, int, int]:
    return math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1:])


def argreduce_plan(k: K.ArgReduceKernel) -> tuple[int, int]:
    outer, n, inner = _outer_inner(k.input.shape, k.axis)
    return workgroups(outer * inner, max(1, n))


def lower_argreduce(f: Func, k: K.ArgReduceKernel, ptrs: Sequence[ir.Value], first: ir.Value,
                    end: ir.Value) -> None:
    b = f.b
    outer, n, inner = _outer_inner(k.input.shape, k.axis)
    dt = k.input.dtype
    _, chunk = argreduce_plan(k)
    X = Operand(f, ptrs, k.input, (n * inner, inner, 1), 0)
    out = Operand(f, ptrs, k.out, (inner, 0, 1), 0)
    better = "<" if k.kind == "argmin" else ">"

    def point(r: ir.Value) -> None:
        o, i = unflatten(f, r, (outer, inner))
        best = f.var(ll(dt), X.load([o, 0, i]))
        idx = f.var(I64, i64(0))

        def step(j):
            v, cur = X.load([o, j, i]), b.load(best)
            if is_float(dt):
                take = b.and_(b.fcmp_ordered("ord", cur, cur),
                              b.or_(b.fcmp_unordered("uno", v, v),
                                    b.fcmp_ordered(better, v, cur)))
            elif dt == "bool" or not is_signed(dt):
                take = b.icmp_unsigned(better, v, cur)
            else:
                take = b.icmp_signed(better, v, cur)
            b.store(b.select(take, v, cur), best)
            b.store(b.select(take, j, b.load(idx)), idx)
        f.loop(1, n, step, name="a")
        out.store([o, 0, i], cast(f, b.load(idx), "int64", k.out.dtype))

    rows_loop(f, outer * inner, chunk, first, end, point)


# ---------------------------------------------------------------------------------------------
# gather


def gather_plan(k: K.GatherKernel) -> tuple[int, int]:
    return workgroups(math.prod(k.out.shape), 1)


def lower_gather(f: Func, k: K.GatherKernel, ptrs: Sequence[ir.Value], first: ir.Value,
                 end: ir.Value) -> None:
    b = f.b
    ax, n = k.axis, k.data.shape[k.axis]
    ni = len(k.indices.shape)
    _, chunk = gather_plan(k)
    D, I, out = (Operand.dense(f, ptrs, op) for op in (k.data, k.indices, k.out))
    epi_ops = epilogue_operands(f, k.epilogue, ptrs)
    idt = k.indices.dtype

    def point(r: ir.Value) -> None:
        coords = unflatten(f, r, k.out.shape)
        raw = cast(f, I.load(coords[ax:ax + ni]), idt, "int64") if idt != "uint64" else \
            I.load(coords[ax:ax + ni])
        if idt == "uint64":   # huge values clamp to n-1
            j = b.select(b.icmp_unsigned(">=", raw, i64(n)), i64(n - 1), raw)
        else:
            j = b.select(b.icmp_signed("<", raw, i64(0)), b.add(raw, i64(n)), raw)
            j = f.min64(f.max64(j, i64(0)), i64(max(n - 1, 0)))
        v = D.load(coords[:ax] + [j] + coords[ax + ni:])
        _store_out(f, k, ptrs, out, epi_ops, coords, v, k.data.dtype)

    if math.prod(k.out.shape):
        rows_loop(f, math.prod(k.out.shape), chunk, first, end, point)


# ---------------------------------------------------------------------------------------------
# softmax


def softmax_plan(k: K.SoftmaxKernel) -> tuple[int, int]:
    outer, n, inner = _outer_inner(k.input.shape, k.axis)
    return workgroups(outer * inner, max(1, 8 * n))


def lower_softmax(f: Func, k: K.SoftmaxKernel, ptrs: Sequence[ir.Value], first: ir.Value,
                  end: ir.Value) -> None:
    from hal_llvm_cpu import mathfns

    b = f.b
    outer, n, inner = _outer_inner(k.input.shape, k.axis)
    dt = k.input.dtype
    cdt = compute_dtype(dt)
    t = ll(cdt)
    _, chunk = softmax_plan(k)
    X = Operand(f, ptrs, k.input, (n * inner, inner, 1), 0)
    out = Operand.dense(f, ptrs, k.out)
    epi_ops = epilogue_operands(f, k.epilogue, ptrs)
    shape = k.out.shape

    def x_at(o, j, i):
        return cast(f, X.load([o, j, i]), dt, cdt)

    def point(r: ir.Value) -> None:
        o, i = unflatten(f, r, (outer, inner))
        mx = f.var(t, identity("max", cdt))
        f.loop(0, n, lambda j: b.store(minmax(f, "max", cdt, b.load(mx), x_at(o, j, i)), mx),
               name="mx")
        m = b.load(mx)
        # An all -inf row: subtract 0 instead so that exp gives 0s and the sum 0 -> NaN as numpy.
        m = b.select(b.fcmp_ordered("==", m, ir.Constant(t, -math.inf)), ir.Constant(t, 0.0), m)
        s = f.var(t, ir.Constant(t, 0.0))
        f.loop(0, n, lambda j: b.store(b.fadd(b.load(s), mathfns.exp(
            f, b.fsub(x_at(o, j, i), m)), flags=FAST), s), name="sum")
        total = b.load(s)
        inv = b.fdiv(ir.Constant(t, 1.0), total)
        lg = mathfns.log(f, total)

        def put(j):
            d = b.fsub(x_at(o, j, i), m)
            v = b.fsub(d, lg) if k.log else b.fmul(mathfns.exp(f, d), inv)
            coords = unflatten(f, b.add(b.mul(b.add(b.mul(o, i64(n)), j), i64(inner)), i),
                               shape)
            _store_out(f, k, ptrs, out, epi_ops, coords, cast(f, v, cdt, k.out.dtype),
                       k.out.dtype)
        f.loop(0, n, put, name="put")

    rows_loop(f, outer * inner, chunk, first, end, point)


LOWERINGS = {
    K.MatmulKernel: (matmul_plan, lower_matmul),
    K.Conv2dKernel: (conv_plan, lower_conv2d),
    K.Pool2dKernel: (pool_plan, lower_pool2d),
    K.ArgReduceKernel: (argreduce_plan, lower_argreduce),
    K.GatherKernel: (gather_plan, lower_gather),
    K.SoftmaxKernel: (softmax_plan, lower_softmax),
}
