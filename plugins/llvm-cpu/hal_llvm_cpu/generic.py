"""GenericKernel -> LLVM IR.

The parallel points are numbered row-major; workgroup w owns points ``[w*chunk, (w+1)*chunk)``.
A tile walks them row by row along the innermost parallel dim, so the innermost loop has
constant strides per operand and the loop vectoriser widens it. Reductions run, per parallel
point, a nest over the reduction dims with the accumulators in registers; when the innermost
iteration dim is parallel and some reduction dim is not, the reduction nest goes outside and
a strip of accumulators runs inside (sum over axis 0 reads rows, not columns).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from llvmlite import ir

from hal_core.compiler import kernel_ir as K
from hal_llvm_cpu.codegen import (
    Body,
    Func,
    Operand,
    combine,
    emit_epilogue,
    epilogue_operands,
    i64,
    identity,
    ll,
)

#: Aim for this many scalar body evaluations per workgroup, and at most this many workgroups.
WORK_PER_WORKGROUP = 1 << 15
MAX_WORKGROUPS = 64
STRIP = 1024   # accumulators per strip in the outer-reduction form
UNROLL = 4     # reduction rows combined in registers per strip update


def workgroups(points: int, work_per_point: int) -> tuple[int, int]:
    """(workgroup count, points per workgroup)."""
    if points == 0:
        return 1, 0
    wg = max(1, min(MAX_WORKGROUPS, points, points * work_per_point // WORK_PER_WORKGROUP))
    chunk = -(-points // wg)
    return -(-points // chunk), chunk


def _strip_form(k: K.GenericKernel) -> bool:
    """The innermost iteration dim is parallel and a reduction dim lies outside it."""
    types = k.iterator_types
    return bool(types) and types[-1] == "parallel" and "reduction" in types


def plan(k: K.GenericKernel) -> tuple[int, int]:
    par = [n for n, t in zip(k.iteration_space, k.iterator_types) if t == "parallel"]
    red = [n for n, t in zip(k.iteration_space, k.iterator_types) if t == "reduction"]
    points = math.prod(par)
    wg, chunk = workgroups(points, max(1, math.prod(red)) * max(1, len(k.body)))
    if _strip_form(k) and chunk < STRIP and wg > 1:
        # Each workgroup walks every reduction row over its columns: give it whole strips
        # (contiguous row runs), not 64-column slivers read at a 16 KiB stride.
        wg = max(1, min(wg, points // STRIP))
        chunk = -(-points // wg)
        wg = -(-points // chunk)
    return wg, chunk


def lower_generic(f: Func, k: K.GenericKernel, ptrs: Sequence[ir.Value], first: ir.Value,
                  end: ir.Value) -> None:
    b = f.b
    space = k.iteration_space
    par = [d for d, t in enumerate(k.iterator_types) if t == "parallel"]
    red = [d for d, t in enumerate(k.iterator_types) if t == "reduction"]
    points = math.prod(space[d] for d in par)
    _, chunk = plan(k)
    if points == 0 or chunk == 0:
        return
    ins = [Operand.mapped(f, ptrs, m) for m in k.inputs]
    outs = [Operand.mapped(f, ptrs, m) for m in k.outputs]
    body = Body(k.body, k.yields, [m.operand.dtype for m in k.inputs])
    acc_dtypes = [body.dtype_of(y) for y in k.yields]
    out_dtypes = [m.operand.dtype for m in k.outputs]
    epi_ops = epilogue_operands(f, k.finalize, ptrs)
    zero = i64(0)

    def at(coords: dict[int, ir.Value]) -> list[ir.Value]:
        return [coords.get(d, zero) for d in range(len(space))]

    def evaluate(coords: list[ir.Value]) -> list[ir.Value]:
        return body.emit(f, lambda i: ins[i].load(coords), coords)

    def store(coords: list[ir.Value], accs: list[ir.Value]) -> None:
        if k.finalize is not None:
            vals = emit_epilogue(f, k.finalize, ptrs, coords, accs, acc_dtypes, out_dtypes,
                                 epi_ops)
        else:
            vals = accs
        for o, v in zip(outs, vals):
            o.store(coords, v)

    def reduce_point(coords: dict[int, ir.Value]) -> None:
        slots = [f.var(ll(dt), identity(c, dt)) for c, dt in zip(k.combiners, acc_dtypes)]

        def inner(idx: list[ir.Value]) -> None:
            full = dict(coords)
            full.update(zip(red, idx))
            vals = evaluate(at(full))
            for s, c, dt, v in zip(slots, k.combiners, acc_dtypes, vals):
                b.store(combine(f, c, dt, b.load(s), v), s)
        f.loops([space[d] for d in red], inner)
        store(at(coords), [b.load(s) for s in slots])

    lo = b.mul(first, i64(chunk))
    hi = f.min64(b.mul(end, i64(chunk)), i64(points))
    if not par:   # one point: a full reduction, or a rank-0 elementwise kernel
        with b.if_then(b.icmp_signed("<", lo, hi)):
            if red:
                reduce_point({})
            else:
                c = at({})
                for o, v in zip(outs, evaluate(c)):
                    o.store(c, v)
        return

    inner_d = par[-1]
    n_inner = space[inner_d]
    outer_red = _strip_form(k)
    pos = f.var(I64_T, lo)
    head = b.append_basic_block("rows.head")
    row = b.append_basic_block("rows.body")
    done = b.append_basic_block("rows.exit")
    b.branch(head)
    b.position_at_end(head)
    cur = b.load(pos)
    b.cbranch(b.icmp_signed("<", cur, hi), row, done)
    b.position_at_end(row)
    i0 = b.urem(cur, i64(n_inner))
    q = b.udiv(cur, i64(n_inner))
    coords: dict[int, ir.Value] = {}
    for d in reversed(par[:-1]):
        coords[d] = b.urem(q, i64(space[d]))
        q = b.udiv(q, i64(space[d]))
    count = f.min64(b.sub(i64(n_inner), i0), b.sub(hi, cur))
    i1 = b.add(i0, count)
    if not red:
        def point(i: ir.Value) -> None:
            c = at({**coords, inner_d: i})
            for o, v in zip(outs, evaluate(c)):
                o.store(c, v)
        f.loop(i0, i1, point)
    elif not outer_red:
        f.loop(i0, i1, lambda i: reduce_point({**coords, inner_d: i}))
    else:
        _strip_reduce(f, k, coords, inner_d, red, i0, i1, evaluate, store, at, acc_dtypes)
    b.store(b.add(cur, count), pos)
    b.branch(head)
    b.position_at_end(done)


I64_T = ir.IntType(64)


def _strip_reduce(f: Func, k: K.GenericKernel, coords: dict[int, ir.Value], inner_d: int,
                  red: list[int], i0: ir.Value, i1: ir.Value, evaluate, store, at,
                  acc_dtypes: list[str]) -> None:
    """Reduction nest outside, a strip of up to STRIP accumulators along ``inner_d`` inside."""
    b = f.b
    space = k.iteration_space
    strips = [f.array(ll(dt), STRIP) for dt in acc_dtypes]

    def strip(s0: ir.Value) -> None:
        s1 = f.min64(b.add(s0, i64(STRIP)), i1)

        def init(i: ir.Value) -> None:
            j = b.sub(i, s0)
            for arr, c, dt in zip(strips, k.combiners, acc_dtypes):
                b.store(identity(c, dt), b.gep(arr, [j], source_etype=ll(dt)))
        f.loop(s0, s1, init, name="init")

        def rows(idx: list[ir.Value], last: ir.Value, unroll: int) -> None:
            """Reduction rows last..last+unroll-1 (of the innermost reduction dim) combined
            in registers first: one strip load and store per ``unroll`` rows."""
            def lane(i: ir.Value) -> None:
                total = None
                for u in range(unroll):
                    full = {**coords, inner_d: i}
                    full.update(zip(red, idx + [b.add(last, i64(u)) if u else last]))
                    vals = evaluate(at(full))
                    total = vals if total is None else [
                        combine(f, c, dt, t, v)
                        for c, dt, t, v in zip(k.combiners, acc_dtypes, total, vals)]
                j = b.sub(i, s0)
                for arr, c, dt, v in zip(strips, k.combiners, acc_dtypes, total):
                    p = b.gep(arr, [j], source_etype=ll(dt))
                    b.store(combine(f, c, dt, b.load(p, typ=ll(dt)), v), p)
            f.loop(s0, s1, lane, name="lane")

        n_last = space[red[-1]]
        main = n_last - n_last % UNROLL

        def red_body(idx: list[ir.Value]) -> None:
            if main:
                f.loop(0, main, lambda r: rows(idx, r, UNROLL), step=UNROLL, name="ru")
            if main != n_last:
                f.loop(main, n_last, lambda r: rows(idx, r, 1), name="rr")
        f.loops([space[d] for d in red[:-1]], red_body)

        def fin(i: ir.Value) -> None:
            j = b.sub(i, s0)
            accs = [b.load(b.gep(arr, [j], source_etype=ll(dt)), typ=ll(dt))
                    for arr, dt in zip(strips, acc_dtypes)]
            store(at({**coords, inner_d: i}), accs)
        f.loop(s0, s1, fin, name="fin")

    f.loop(i0, i1, strip, step=STRIP, name="strip")


