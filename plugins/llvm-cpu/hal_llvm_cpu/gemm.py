"""float32 matmul through a register-tiled micro-kernel.

A workgroup owns one (batch, column panel of NC columns). It packs its panel of B (K x NC,
zero-padded past N) into 64-byte aligned scratch once, then walks K in blocks of KC and M in
tiles of MR rows; the micro-kernel keeps MR x (NC / VEC) vector accumulators in registers and
does one fma per (row, vector) per k, with A broadcast from its row. Columns past N are
computed on the zero padding and masked at the store. Epilogues run after the last K block,
over the tile in C (a short contiguous loop that the vectoriser widens).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from llvmlite import ir

from hal_core.compiler import kernel_ir as K
from hal_llvm_cpu.codegen import (
    F32,
    I1,
    I32,
    I64,
    PTR,
    Func,
    Operand,
    declare,
    emit_epilogue,
    epilogue_operands,
    i64,
)

KC = 256


def _shape(vector_bits: int) -> tuple[int, int, int]:
    """(VEC lanes, vectors per row NV, rows MR) for the register tile."""
    if vector_bits >= 512:
        return 16, 4, 6
    if vector_bits >= 256:
        return 8, 2, 6
    return 4, 2, 4


def applies(k: K.Kernel) -> bool:
    return (isinstance(k, K.MatmulKernel) and k.lhs.dtype == k.rhs.dtype == k.out.dtype
            == "float32" and (k.acc_dtype or "float32") == "float32" and k.out.num_elements > 0)


def conv_applies(k: K.Kernel) -> bool:
    return False


def _panels(k: K.MatmulKernel, vector_bits: int) -> tuple[int, int, int]:
    """(batches, column panels, panel width)."""
    vec, nv, _ = _shape(vector_bits)
    nc = vec * nv
    return math.prod(k.out.shape[:-2]), -(-k.mnk[1] // nc), nc


def plan(k: K.MatmulKernel, machine) -> tuple[int, int]:
    batches, panels, _ = _panels(k, machine.vector_bits)
    return batches * panels, 1


def lower_matmul(f: Func, k: K.MatmulKernel, ptrs: Sequence[ir.Value], first: ir.Value,
                 end: ir.Value, machine) -> None:
    b = f.b
    vec, nv, mr_max = _shape(machine.vector_bits)
    M, N, Kd = k.mnk
    _, panels, nc = _panels(k, machine.vector_bits)
    batch_shape = k.out.shape[:-2]
    A, B, C = (Operand.dense(f, ptrs, op) for op in (k.lhs, k.rhs, k.out))
    epi_ops = epilogue_operands(f, k.epilogue, ptrs)
    vt = ir.VectorType(F32, vec)
    fma = declare(f.module, f"llvm.fma.v{vec}f32", vt, [vt, vt, vt])
    mload = declare(f.module, f"llvm.masked.load.v{vec}f32.p0", vt,
                    [PTR, I32, ir.VectorType(I1, vec), vt])
    mstore = declare(f.module, f"llvm.masked.store.v{vec}f32.p0", ir.VoidType(),
                     [vt, PTR, I32, ir.VectorType(I1, vec)])
    alloc = declare(f.module, "aligned_alloc", PTR, [I64, I64])
    free = declare(f.module, "free", ir.VoidType(), [PTR])
    lanes = ir.Constant(ir.VectorType(I64, vec), list(range(vec)))
    zero_v = ir.Constant(vt, [0.0] * vec)
    kc_blocks = max(1, -(-Kd // KC))
    a_m, a_k = (1, M) if k.transpose_a else (Kd, 1)

    packed = b.call(alloc, [i64(64), i64(max(64, Kd * nc * 4))])

    def operand_base(op: K.KernelOperand, batch: list[ir.Value]) -> ir.Value:
        nb = len(op.shape) - 2
        lead = len(batch_shape) - nb
        st = Operand.strides(op.shape)
        off = i64(0)
        for i in range(nb):
            if op.shape[i] != 1:
                off = b.add(off, b.mul(batch[lead + i], i64(st[i])))
        return off

    def work(item: ir.Value) -> None:
        panel(b.udiv(item, i64(panels)), b.urem(item, i64(panels)))

    def panel(bi: ir.Value, p: ir.Value) -> None:
        batch = _unflatten(f, bi, batch_shape)
        a0, b0 = operand_base(k.lhs, batch), operand_base(k.rhs, batch)
        c0 = b.mul(bi, i64(M * N))
        n0 = b.mul(p, i64(nc))
        ncols = f.min64(i64(nc), b.sub(i64(N), n0))

        def pack_row(kk):
            def col(j):
                n = b.add(n0, j)
                inside = b.icmp_signed("<", j, ncols)
                nn = b.select(inside, n, i64(0))
                src = b.add(b0, b.add(b.mul(nn, i64(Kd)), kk) if k.transpose_b
                            else b.add(b.mul(kk, i64(N)), nn))
                v = b.select(inside, B.load_at(src), ir.Constant(F32, 0.0))
                b.store(v, b.gep(packed, [b.add(b.mul(kk, i64(nc)), j)], source_etype=F32))
            f.loop(0, nc, col, name="pc")
        f.loop(0, Kd, pack_row, name="pk")

        masks = []
        for j in range(nv):
            lim = _splat(b, b.sub(ncols, i64(j * vec)), vec, I64)
            masks.append(b.icmp_signed("<", lanes, lim))

        def kblock(kb: int, mr: int, m0: ir.Value, k0: int, k1: int) -> None:
            cptr = [b.gep(C.base, [b.add(c0, b.add(b.mul(b.add(m0, i64(r)), i64(N)), n0))],
                          source_etype=F32) for r in range(mr)]
            accs = []
            for r in range(mr):
                for j in range(nv):
                    slot = f.var(vt)
                    if kb == 0:
                        b.store(zero_v, slot)
                    else:
                        ptr = b.gep(cptr[r], [i64(j * vec)], source_etype=F32)
                        b.store(b.call(mload, [ptr, ir.Constant(I32, 4), masks[j], zero_v]),
                                slot)
                    accs.append(slot)
            arow = [b.add(a0, b.mul(b.add(m0, i64(r)), i64(a_m))) for r in range(mr)]

            def kstep(kk: ir.Value) -> None:
                bv = [b.load(b.gep(packed, [b.add(b.mul(kk, i64(nc)), i64(j * vec))],
                                   source_etype=F32), typ=vt, align=64) for j in range(nv)]
                ka = b.mul(kk, i64(a_k))
                for r in range(mr):
                    av = _splat(b, A.load_at(b.add(arow[r], ka)), vec, F32)
                    for j in range(nv):
                        s = accs[r * nv + j]
                        b.store(b.call(fma, [av, bv[j], b.load(s)]), s)
            f.loop(k0, k1, kstep, name="k")
            for r in range(mr):
                for j in range(nv):
                    ptr = b.gep(cptr[r], [i64(j * vec)], source_etype=F32)
                    b.call(mstore, [b.load(accs[r * nv + j]), ptr, ir.Constant(I32, 4),
                                    masks[j]])
            if kb == kc_blocks - 1 and k.epilogue is not None:
                def row_epi(r: ir.Value) -> None:
                    m = b.add(m0, r)

                    def colv(j: ir.Value) -> None:
                        n = b.add(n0, j)
                        idx = b.add(c0, b.add(b.mul(m, i64(N)), n))
                        coords = _unflatten(f, bi, batch_shape) + [m, n]
                        v = emit_epilogue(f, k.epilogue, ptrs, coords, [C.load_at(idx)],
                                          ["float32"], ["float32"], epi_ops)[0]
                        C.store_at(idx, v)
                    f.loop(0, ncols, colv, name="ec")
                f.loop(0, mr, row_epi, name="er")

        full = M // mr_max
        tail = M % mr_max
        for kb in range(kc_blocks):
            k0, k1 = kb * KC, min(Kd, (kb + 1) * KC)
            if full:
                f.loop(0, full, lambda t, kb=kb, k0=k0, k1=k1: kblock(
                    kb, mr_max, b.mul(t, i64(mr_max)), k0, k1), name="mt")
            if tail:
                kblock(kb, tail, i64(full * mr_max), k0, k1)

    f.loop(first, end, work, name="wg")
    b.call(free, [packed])


def _splat(b: ir.IRBuilder, x: ir.Value, n: int, t: ir.Type) -> ir.Value:
    vt = ir.VectorType(t, n)
    v = b.insert_element(ir.Constant(vt, ir.Undefined), x, ir.Constant(I32, 0))
    return b.shuffle_vector(v, ir.Constant(vt, ir.Undefined),
                            ir.Constant(ir.VectorType(I32, n), [0] * n))


def _unflatten(f: Func, flat: ir.Value, sizes: Sequence[int]) -> list[ir.Value]:
    out = []
    for n in reversed(sizes):
        out.append(f.b.urem(flat, i64(n)))
        flat = f.b.udiv(flat, i64(n))
    return out[::-1]
