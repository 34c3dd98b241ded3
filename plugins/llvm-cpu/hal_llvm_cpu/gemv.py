"""float32 matmul with few rows (M <= MAX_M): matrix-vector products that read B once.

The register-tiled product (:mod:`hal_llvm_cpu.gemm`) packs panels of B before using them;
with one row of A every element of B is used once, so packing tripled the memory traffic
of a layer that is all memory traffic (ResNet-50's classifier: 2048x1000 weights, 3.35 ms
against ~0.5 ms to stream 8 MB once). Here:

* B is ``(K, N)``: a work item owns a block of columns and walks k, one fma per (row of A,
  vector of the block) with A broadcast; the block's accumulators stay in registers.
* B is ``(N, K)`` (``transpose_b``, ONNX Gemm with transB=1): a work item owns a block of
  rows of B; groups of ROWS rows are dot products along k with vector accumulators,
  summed across lanes at the end.

Epilogues (bias, activation) apply per element before the store.
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
from hal_llvm_cpu.gemm import applies as gemm_applies
from hal_llvm_cpu.gemm import splat, vector_lanes

#: Matmuls with at most this many rows of A (and A not transposed, unless M is 1).
MAX_M = 4
#: Work items wanted so that both workers of local-task get some.
MIN_ITEMS = 8
#: Rows of B (transpose_b) per dot-product group, and vectors along k per row.
ROWS, UNROLL = 4, 2


def applies(k: K.Kernel) -> bool:
    if not (isinstance(k, K.MatmulKernel) and gemm_applies(k)):
        return False
    m, n, _ = k.mnk
    return m <= MAX_M and n > 0 and (m == 1 or not k.transpose_a)


def _split(k: K.MatmulKernel, machine) -> tuple[int, int, int]:
    """(batches, blocks per batch, block size: columns, or rows of B with transpose_b)."""
    m, n, _ = k.mnk
    batches = math.prod(k.out.shape[:-2])
    vec = vector_lanes(machine.vector_bits)
    if k.transpose_b:
        size = 32
        while size > ROWS and batches * -(-n // size) < MIN_ITEMS:
            size //= 2
    else:
        nvec = max(1, min(8, 16 // m))
        while nvec > 1 and batches * -(-n // (nvec * vec)) < MIN_ITEMS:
            nvec //= 2
        size = nvec * vec
    return batches, -(-n // size), size


def plan(k: K.MatmulKernel, machine) -> tuple[int, int]:
    batches, blocks, _ = _split(k, machine)
    return batches * blocks, 1


def lower_gemv(f: Func, k: K.MatmulKernel, ptrs: Sequence[ir.Value], first: ir.Value,
               end: ir.Value, machine) -> None:
    b = f.b
    M, N, Kd = k.mnk
    vec = vector_lanes(machine.vector_bits)
    vt = ir.VectorType(F32, vec)
    mt = ir.VectorType(I1, vec)
    _, blocks, size = _split(k, machine)
    batch_shape = k.out.shape[:-2]
    A, B, C = (Operand.dense(f, ptrs, op) for op in (k.lhs, k.rhs, k.out))
    epi_ops = epilogue_operands(f, k.epilogue, ptrs)
    fma = declare(f.module, f"llvm.fma.v{vec}f32", vt, [vt, vt, vt])
    mload = declare(f.module, f"llvm.masked.load.v{vec}f32.p0", vt, [PTR, I32, mt, vt])
    lanes = ir.Constant(ir.VectorType(I64, vec), list(range(vec)))
    zero = ir.Constant(vt, [0.0] * vec)
    four = ir.Constant(I32, 4)
    a_m = Kd   # A is (M, K), or (K, 1) transposed with M == 1: k is contiguous either way

    def base(op: K.KernelOperand, batch: list[ir.Value]) -> ir.Value:
        nb = len(op.shape) - 2
        lead = len(batch_shape) - nb
        st = Operand.strides(op.shape)
        off = i64(0)
        for i in range(nb):
            if op.shape[i] != 1:
                off = b.add(off, b.mul(batch[lead + i], i64(st[i])))
        return off

    def store(batch, m, n, c_index, v) -> None:
        if k.epilogue is not None:
            v = emit_epilogue(f, k.epilogue, ptrs, batch + [m, n], [v], ["float32"],
                              ["float32"], epi_ops)[0]
        C.store_at(c_index, v)

    def work(item: ir.Value) -> None:
        bi, blk = b.udiv(item, i64(blocks)), b.urem(item, i64(blocks))
        batch = []
        flat = bi
        for s in reversed(batch_shape):
            batch.insert(0, b.urem(flat, i64(s)))
            flat = b.udiv(flat, i64(s))
        a0, b0 = base(k.lhs, batch), base(k.rhs, batch)
        c0 = b.mul(bi, i64(M * N))
        n0 = b.mul(blk, i64(size))
        if k.transpose_b:
            _dots(batch, a0, b0, c0, n0)
        else:
            _columns(batch, a0, b0, c0, n0)

    def _columns(batch, a0, b0, c0, n0) -> None:
        nvec = size // vec
        ncols = f.min64(i64(size), b.sub(i64(N), n0))
        masks = [b.icmp_signed("<", lanes, splat(b, b.sub(ncols, i64(j * vec)), vec, I64))
                 for j in range(nvec)]
        accs = [[f.var(vt) for _ in range(nvec)] for _ in range(M)]
        for row in accs:
            for s in row:
                b.store(zero, s)

        def kstep(kk: ir.Value) -> None:
            brow = b.add(b0, b.add(b.mul(kk, i64(N)), n0))
            bv = [b.call(mload, [B.ptr(b.add(brow, i64(j * vec)), False), four, masks[j], zero])
                  for j in range(nvec)]
            for m in range(M):
                av = splat(b, A.load_at(b.add(a0, b.add(i64(m * a_m), kk))), vec, F32)
                for j in range(nvec):
                    s = accs[m][j]
                    b.store(b.call(fma, [av, bv[j], b.load(s)]), s)
        f.loop(0, Kd, kstep, name="k")
        tmp = f.array(F32, size)
        mstore = declare(f.module, f"llvm.masked.store.v{vec}f32.p0", ir.VoidType(),
                         [vt, PTR, I32, mt])
        every = ir.Constant(mt, [1] * vec)
        for m in range(M):
            for j in range(nvec):
                b.call(mstore, [b.load(accs[m][j]), b.gep(tmp, [i64(j * vec)], source_etype=F32),
                                four, every])

            def put(j: ir.Value, m=m) -> None:
                n = b.add(n0, j)
                v = b.load(b.gep(tmp, [j], source_etype=F32))
                store(batch, i64(m), n, b.add(c0, b.add(i64(m * N), n)), v)
            f.loop(0, ncols, put, name="st")

    def _dots(batch, a0, b0, c0, n0) -> None:
        n1 = f.min64(b.add(n0, i64(size)), i64(N))
        reduce = declare(f.module, f"llvm.vector.reduce.fadd.v{vec}f32", F32, [F32, vt])

        def group(g: ir.Value) -> None:
            # rows past the block repeat its last row (valid memory) and are not stored
            rows = [f.min64(b.add(g, i64(i)), b.sub(n1, i64(1))) for i in range(ROWS)]
            brows = [b.add(b0, b.mul(r, i64(Kd))) for r in rows]
            accs = [[[f.var(vt) for _ in range(UNROLL)] for _ in range(ROWS)] for _ in range(M)]
            for per_m in accs:
                for per_row in per_m:
                    for s in per_row:
                        b.store(zero, s)

            def kstep(kk: ir.Value) -> None:
                for u in range(UNROLL):
                    ku = b.add(kk, i64(u * vec))
                    mask = b.icmp_signed("<", b.add(lanes, splat(b, ku, vec, I64)),
                                         splat(b, i64(Kd), vec, I64))
                    bv = [b.call(mload, [B.ptr(b.add(br, ku), False), four, mask, zero])
                          for br in brows]
                    for m in range(M):
                        av = b.call(mload, [A.ptr(b.add(a0, b.add(i64(m * a_m), ku)), False),
                                            four, mask, zero])
                        for i in range(ROWS):
                            s = accs[m][i][u]
                            b.store(b.call(fma, [av, bv[i], b.load(s)]), s)
            f.loop(0, Kd, kstep, step=UNROLL * vec, name="k")
            for i in range(ROWS):
                n = b.add(g, i64(i))
                with b.if_then(b.icmp_signed("<", n, n1)):
                    for m in range(M):
                        v = b.load(accs[m][i][0])
                        for u in range(1, UNROLL):
                            v = b.fadd(v, b.load(accs[m][i][u]))
                        total = b.call(reduce, [ir.Constant(F32, 0.0), v],
                                       fastmath=("reassoc",))
                        store(batch, i64(m), n, b.add(c0, b.add(i64(m * N), n)), total)
        f.loop(n0, n1, group, step=ROWS, name="g")

    f.loop(first, end, work, name="wg")
