"""float32 matmul through a register-tiled micro-kernel.

A workgroup owns one (batch, column panel of NC columns). It packs its panel of B (K x NC,
zero-padded past N) into 64-byte aligned scratch once, then walks K in blocks of KC and M in
tiles of MR rows; the micro-kernel keeps MR x (NC / VEC) vector accumulators in registers and
does one fma per (row, vector) per k, with A broadcast from its row. Columns past N are
computed on the zero padding and masked at the store. Epilogues run after the last K block,
over the tile in C (a short contiguous loop that the vectoriser widens). conv2d runs the same
tiler (:mod:`hal_llvm_cpu.conv`).
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


def vector_lanes(vector_bits: int) -> int:
    """f32 lanes of the widest vector the target prefers."""
    return tile_shape(vector_bits)[0]


def tile_shape(vector_bits: int) -> tuple[int, int, int]:
    """(VEC lanes, vectors per row NV, rows MR) for the register tile."""
    if vector_bits >= 512:
        return 16, 4, 6
    if vector_bits >= 256:
        return 8, 2, 6
    return 4, 2, 4


def applies(k: K.Kernel) -> bool:
    return (isinstance(k, K.MatmulKernel) and k.lhs.dtype == k.rhs.dtype == k.out.dtype
            == "float32" and (k.acc_dtype or "float32") == "float32" and k.out.num_elements > 0)


def _panels(k: K.MatmulKernel, vector_bits: int) -> tuple[int, int, int]:
    """(batches, column panels, panel width)."""
    vec, nv, _ = tile_shape(vector_bits)
    nc = vec * nv
    return math.prod(k.out.shape[:-2]), -(-k.mnk[1] // nc), nc


#: Fewer (batch, panel) work items than this split M into row blocks too, so that every
#: worker of local-task gets some (a 7x7 convolution has a single column panel).
MIN_ITEMS = 8


def m_blocks(m: int, items: int, vector_bits: int) -> tuple[int, int]:
    """(rows per block, blocks) for an M of ``m`` rows and ``items`` other work items."""
    mr = tile_shape(vector_bits)[2]
    if items >= MIN_ITEMS or m <= mr:
        return m, 1
    want = min(-(-MIN_ITEMS // items), -(-m // mr))
    rows = -(-(-(-m // want)) // mr) * mr
    return rows, -(-m // rows)


def plan(k: K.MatmulKernel, machine) -> tuple[int, int]:
    batches, panels, _ = _panels(k, machine.vector_bits)
    _, blocks = m_blocks(k.mnk[0], batches * panels, machine.vector_bits)
    return batches * panels * blocks, 1


class Tiler:
    """The packed-B register-tiled product ``C[m, n0:n0+ncols] = A[m, :] @ Bpanel`` of one
    panel, shared by matmul and conv2d (whose B panel is packed from the image: im2col done
    one panel at a time, never materialised)."""

    def __init__(self, f: Func, machine, kd: int, scratch: bool = True, total_cols: int = 0,
                 a_k: int = 1) -> None:
        b = self.b = f.b
        self.f = f
        self.vec, self.nv, self.mr = tile_shape(machine.vector_bits)
        self.nc = self.vec * self.nv
        self.kd = kd
        vec = self.vec
        self.vt = vt = ir.VectorType(F32, vec)
        self.fma = declare(f.module, f"llvm.fma.v{vec}f32", vt, [vt, vt, vt])
        self.mload = declare(f.module, f"llvm.masked.load.v{vec}f32.p0", vt,
                             [PTR, I32, ir.VectorType(I1, vec), vt])
        self.mstore = declare(f.module, f"llvm.masked.store.v{vec}f32.p0", ir.VoidType(),
                              [vt, PTR, I32, ir.VectorType(I1, vec)])
        alloc = declare(f.module, "aligned_alloc", PTR, [I64, I64])
        self.free = declare(f.module, "free", ir.VoidType(), [PTR])
        self.lanes = ir.Constant(ir.VectorType(I64, vec), list(range(vec)))
        self.zero_v = ir.Constant(vt, [0.0] * vec)
        # no scratch: B is read in place (``direct``)
        self.packed = (b.call(alloc, [i64(64), i64(max(64, kd * self.nc * 4))]) if scratch
                       else None)
        self.packed_id = f.var(I64, i64(-1))
        # A last panel of VEC*q + 1 columns (ResNet's 7x7 layers: 49) computes q vectors and
        # its last column as dot products along k (vectors of A's rows times the column,
        # copied contiguous here, zero-padded to a multiple of 16 >= VEC): q + 1 vectors
        # would waste (VEC - 1) / VEC of the last one.
        self.extra = (total_cols % self.nc) % vec == 1 and a_k == 1
        self.col = b.call(alloc, [i64(64), i64(max(64, -(-kd // 16) * 64))]) if self.extra \
            else None
        #: ``direct(kk)``: where row kk of B's panel starts in B itself, read in place
        #: (masked past the panel's columns) instead of from the packed copy.
        self.direct = None
        #: ``prefetch(m, n)``: pointers the epilogue will read for element (m, n) of C (in
        #: the epilogue's row numbering); prefetched, a vector apart, as a tile starts its
        #: last K block, so that a residual's lines arrive while the tile computes.
        self.prefetch = None
        self.row_shift = i64(0)
        self.prefetch_fn = declare(f.module, "llvm.prefetch.p0", ir.VoidType(),
                                   [PTR, I32, I32, I32])

    def pack_once(self, panel_id: ir.Value, pack) -> None:
        """Run ``pack`` unless this call's previous work item packed the same panel (row
        blocks of one panel follow each other)."""
        b = self.b
        with b.if_then(b.icmp_unsigned("!=", b.load(self.packed_id), panel_id)):
            pack()
            b.store(panel_id, self.packed_id)

    def release(self) -> None:
        for buf in (self.packed, self.col):
            if buf is not None:
                self.b.call(self.free, [buf])

    def copy_row(self, src: ir.Value, dst: ir.Value, ncols: ir.Value) -> None:
        """dst[0:nc] = src[0:ncols], zeros after (masked loads never touch memory past it)."""
        b = self.b
        for j in range(self.nv):
            mask = b.icmp_signed("<", self.lanes, splat(b, b.sub(ncols, i64(j * self.vec)),
                                                         self.vec, I64))
            v = b.call(self.mload, [b.gep(src, [i64(j * self.vec)], source_etype=F32),
                                    ir.Constant(I32, 4), mask, self.zero_v])
            b.store(v, b.gep(dst, [i64(j * self.vec)], source_etype=F32), align=64)

    def row_ptr(self, kk: ir.Value) -> ir.Value:
        return self.b.gep(self.packed, [self.b.mul(kk, i64(self.nc))], source_etype=F32)

    def panel(self, A: Operand, a0: ir.Value, a_m: int, a_k: int, C: Operand, c0: ir.Value,
              ldc: int, n0: ir.Value, ncols: ir.Value, m_rows: int, epi=None,
              total_cols: int = 0) -> None:
        """B's panel must be packed (``kd`` rows of ``nc`` floats, zero past ``ncols``).
        ``epi(m, n, c_index)`` rewrites one finished element of C. With ``total_cols`` (N),
        the last, partial panel runs a narrower tile (fewer vectors per row) instead of
        computing on zero padding: N = 196 would otherwise waste a quarter of the work."""
        rem = total_cols % self.nc
        tail_nv = -(-rem // self.vec)
        extra = self.extra and a_k == 1
        if rem and extra and total_cols <= self.nc:   # the only panel is the last one
            self._gather_column(n0, rem - 1)
            self._panel(A, a0, a_m, a_k, C, c0, ldc, n0, i64(rem - 1), m_rows, epi,
                        rem // self.vec, extra_col=rem - 1)
        elif rem and (tail_nv < self.nv or extra):
            b = self.b
            last = b.icmp_signed(">=", b.add(n0, i64(self.nc)), i64(total_cols))
            with b.if_else(last) as (then, otherwise):
                with then:
                    if extra:
                        self._gather_column(n0, rem - 1)
                        self._panel(A, a0, a_m, a_k, C, c0, ldc, n0, i64(rem - 1), m_rows,
                                    epi, rem // self.vec, extra_col=rem - 1)
                    else:
                        self._panel(A, a0, a_m, a_k, C, c0, ldc, n0, ncols, m_rows, epi,
                                    tail_nv)
                with otherwise:
                    self._panel(A, a0, a_m, a_k, C, c0, ldc, n0, ncols, m_rows, epi, self.nv)
        else:
            self._panel(A, a0, a_m, a_k, C, c0, ldc, n0, ncols, m_rows, epi, self.nv)

    def blocked(self, blk: ir.Value, rows: int, blocks: int, m: int, A, a0, a_m, a_k, C, c0,
                ldc, n0, ncols, epi, total_cols: int) -> None:
        """The panel for rows ``[blk*rows, min(m, (blk+1)*rows))`` of A and C."""
        b = self.b
        m0 = b.mul(blk, i64(rows))
        a0 = b.add(a0, b.mul(m0, i64(a_m)))
        c0 = b.add(c0, b.mul(m0, i64(ldc)))
        shifted = None if epi is None else (lambda mm, n, idx: epi(b.add(mm, m0), n, idx))
        self.row_shift = m0
        last = m - (blocks - 1) * rows
        if blocks > 1 and last != rows:
            with b.if_else(b.icmp_unsigned("==", blk, i64(blocks - 1))) as (then, otherwise):
                with then:
                    self.panel(A, a0, a_m, a_k, C, c0, ldc, n0, ncols, last, shifted,
                               total_cols)
                with otherwise:
                    self.panel(A, a0, a_m, a_k, C, c0, ldc, n0, ncols, rows, shifted,
                               total_cols)
        else:
            self.panel(A, a0, a_m, a_k, C, c0, ldc, n0, ncols, rows, shifted, total_cols)

    def _gather_column(self, n0: ir.Value, j: int) -> None:
        """self.col[0:kd] = column j of the panel (zeros up to a multiple of 16)."""
        b = self.b

        def one(kk: ir.Value) -> None:
            row = self.direct(kk) if self.direct is not None else self.row_ptr(kk)
            v = b.load(b.gep(row, [i64(j)], source_etype=F32, inbounds=False), typ=F32)
            b.store(v, b.gep(self.col, [kk], source_etype=F32))
        self.f.loop(0, self.kd, one, name="gc")
        self.f.loop(self.kd, -(-self.kd // 16) * 16, lambda kk: b.store(
            ir.Constant(F32, 0.0), b.gep(self.col, [kk], source_etype=F32)), name="gz")

    def _panel(self, A, a0, a_m, a_k, C, c0, ldc, n0, ncols, m_rows, epi, nv: int,
               extra_col: int = -1) -> None:
        """``extra_col`` >= 0: column ``extra_col`` of the panel (after the ``nv`` vectors,
        gathered into self.col) is computed as dot products along k; ``ncols`` covers the
        vectors only."""
        f, b, vec = self.f, self.b, self.vec
        extra = extra_col >= 0
        kc_blocks = max(1, -(-self.kd // KC))
        kc_blocks = max(1, -(-self.kd // KC))
        masks = [b.icmp_signed("<", self.lanes, splat(b, b.sub(ncols, i64(j * vec)), vec, I64))
                 for j in range(nv)]

        def kblock(kb: int, mr: int, m0: ir.Value, k0: int, k1: int) -> None:
            cptr = [C.ptr(b.add(c0, b.add(b.mul(b.add(m0, i64(r)), i64(ldc)), n0)))
                    for r in range(mr)]
            accs = []
            for r in range(mr):
                for j in range(nv):
                    slot = f.var(self.vt)
                    if kb == 0:
                        b.store(self.zero_v, slot)
                    else:
                        ptr = b.gep(cptr[r], [i64(j * vec)], source_etype=F32)
                        b.store(b.call(self.mload, [ptr, ir.Constant(I32, 4), masks[j],
                                                    self.zero_v]), slot)
                    accs.append(slot)
            arow = [b.add(a0, b.mul(b.add(m0, i64(r)), i64(a_m))) for r in range(mr)]
            if kb == kc_blocks - 1 and self.prefetch is not None:
                for r in range(mr):
                    for j in range(max(nv, 1)):
                        for ptr in self.prefetch(b.add(self.row_shift, b.add(m0, i64(r))),
                                                 b.add(n0, i64(j * vec))):
                            b.call(self.prefetch_fn, [ptr, ir.Constant(I32, 0),
                                                      ir.Constant(I32, 3), ir.Constant(I32, 1)])

            def kstep(kk: ir.Value) -> None:
                if self.direct is not None:
                    row = self.direct(kk)
                    bv = [b.call(self.mload, [b.gep(row, [i64(j * vec)], source_etype=F32,
                                                    inbounds=False), ir.Constant(I32, 4),
                                              masks[j], self.zero_v]) for j in range(nv)]
                else:
                    row = self.row_ptr(kk)
                    bv = [b.load(b.gep(row, [i64(j * vec)], source_etype=F32), typ=self.vt,
                                 align=64) for j in range(nv)]
                ka = b.mul(kk, i64(a_k))
                for r in range(mr):
                    av = splat(b, A.load_at(b.add(arow[r], ka)), vec, F32)
                    for j in range(nv):
                        s = accs[r * nv + j]
                        b.store(b.call(self.fma, [av, bv[j], b.load(s)]), s)
            if not extra:
                f.loop(k0, k1, kstep, name="k")
            else:
                dots = [f.var(self.vt) for _ in range(mr)]
                for d in dots:
                    b.store(self.zero_v, d)

                def dot_step(kq: ir.Value, mask: ir.Value | None) -> None:
                    four = ir.Constant(I32, 4)
                    cp = b.gep(self.col, [kq], source_etype=F32)
                    cv = (b.load(cp, typ=self.vt, align=4 * vec) if mask is None else
                          b.call(self.mload, [cp, four, mask, self.zero_v]))
                    for r in range(mr):
                        ap = A.ptr(b.add(arow[r], kq), False)
                        av = (b.load(ap, typ=self.vt, align=4) if mask is None else
                              b.call(self.mload, [ap, four, mask, self.zero_v]))
                        b.store(b.call(self.fma, [av, cv, b.load(dots[r])]), dots[r])

                def kvec(kq: ir.Value) -> None:
                    # (a loop, not VEC copies: those made the 7x7 layers' kernels take 8 s
                    # each to compile, a copy per K block, tile height and branch)
                    f.loop(kq, b.add(kq, i64(vec)), kstep, name="k")
                    dot_step(kq, None)
                whole = k0 + (k1 - k0) // vec * vec
                f.loop(k0, whole, kvec, step=vec, name="kv")
                if whole < k1:
                    f.loop(whole, k1, kstep, name="k")
                    dot_step(i64(whole), ir.Constant(ir.VectorType(I1, vec),
                                                     [u < k1 - whole for u in range(vec)]))
                red = declare(f.module, f"llvm.vector.reduce.fadd.v{vec}f32", F32,
                              [F32, self.vt])
                for r in range(mr):
                    ptr = b.gep(cptr[r], [i64(extra_col)], source_etype=F32)
                    total = b.call(red, [ir.Constant(F32, 0.0), b.load(dots[r])],
                                   fastmath=("reassoc",))
                    if kb > 0:
                        total = b.fadd(b.load(ptr, typ=F32), total)
                    b.store(total, ptr)
            for r in range(mr):
                for j in range(nv):
                    ptr = b.gep(cptr[r], [i64(j * vec)], source_etype=F32)
                    b.call(self.mstore, [b.load(accs[r * nv + j]), ptr, ir.Constant(I32, 4),
                                         masks[j]])
            if kb == kc_blocks - 1 and epi is not None:
                def row_epi(r: ir.Value) -> None:
                    m = b.add(m0, r)

                    def colv(j: ir.Value) -> None:
                        n = b.add(n0, j)
                        epi(m, n, b.add(c0, b.add(b.mul(m, i64(ldc)), n)))
                    f.loop(0, i64(extra_col + 1) if extra else ncols, colv, name="ec")
                f.loop(0, mr, row_epi, name="er")

        full, tail = divmod(m_rows, self.mr)
        for kb in range(kc_blocks):
            k0, k1 = kb * KC, min(self.kd, (kb + 1) * KC)
            if full:
                f.loop(0, full, lambda t, kb=kb, k0=k0, k1=k1: kblock(
                    kb, self.mr, b.mul(t, i64(self.mr)), k0, k1), name="mt")
            if tail:
                kblock(kb, tail, i64(full * self.mr), k0, k1)


def lower_matmul(f: Func, k: K.MatmulKernel, ptrs: Sequence[ir.Value], first: ir.Value,
                 end: ir.Value, machine) -> None:
    b = f.b
    M, N, Kd = k.mnk
    batches, panels, nc = _panels(k, machine.vector_bits)
    rows, blocks = m_blocks(M, batches * panels, machine.vector_bits)
    batch_shape = k.out.shape[:-2]
    A, B, C = (Operand.dense(f, ptrs, op) for op in (k.lhs, k.rhs, k.out))
    epi_ops = epilogue_operands(f, k.epilogue, ptrs)
    a_m, a_k = (1, M) if k.transpose_a else (Kd, 1)
    t = Tiler(f, machine, Kd, total_cols=N, a_k=a_k)

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
        blk, item = b.urem(item, i64(blocks)), b.udiv(item, i64(blocks))
        bi, p = b.udiv(item, i64(panels)), b.urem(item, i64(panels))
        batch = _unflatten(f, bi, batch_shape)
        a0, b0 = operand_base(k.lhs, batch), operand_base(k.rhs, batch)
        c0 = b.mul(bi, i64(M * N))
        n0 = b.mul(p, i64(nc))
        ncols = f.min64(i64(nc), b.sub(i64(N), n0))

        if k.transpose_b:
            def pack_row(kk):
                row = t.row_ptr(kk)

                def col(j):
                    inside = b.icmp_signed("<", j, ncols)
                    nn = b.select(inside, b.add(n0, j), i64(0))
                    v = b.select(inside, B.load_at(b.add(b0, b.add(b.mul(nn, i64(Kd)), kk))),
                                 ir.Constant(F32, 0.0))
                    b.store(v, b.gep(row, [j], source_etype=F32))
                f.loop(0, nc, col, name="pc")
        else:
            def pack_row(kk):   # a contiguous row of B: masked vector loads, zeros past N
                t.copy_row(B.ptr(b.add(b0, b.add(b.mul(kk, i64(N)), n0)), False),
                           t.row_ptr(kk), ncols)
        t.pack_once(item, lambda: f.loop(0, Kd, pack_row, name="pk"))

        epi = None
        if k.epilogue is not None:
            def epi(m, n, idx):
                coords = batch + [m, n]
                v = emit_epilogue(f, k.epilogue, ptrs, coords, [C.load_at(idx)], ["float32"],
                                  ["float32"], epi_ops)[0]
                C.store_at(idx, v)
        t.blocked(blk, rows, blocks, M, A, a0, a_m, a_k, C, c0, N, n0, ncols, epi, N)

    f.loop(first, end, work, name="wg")
    t.release()


def splat(b: ir.IRBuilder, x: ir.Value, n: int, t: ir.Type) -> ir.Value:
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
