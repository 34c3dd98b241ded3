"""float32 matmul through a register-tiled micro-kernel.

A workgroup owns one (batch, column panel of NC columns). It packs its panel of B (K x NC,
zero-padded past N) into 64-byte aligned scratch once, then walks K in blocks of KC and M in
tiles of MR rows; the micro-kernel keeps MR x (NC / VEC) vector accumulators in registers and
does one fma per (row, vector) per k, with A broadcast from its row. Columns past N are
computed on the zero padding and masked at the store. Epilogues run after the last K block,
over the tile in C (a short contiguous loop that the vectoriser widens).
"""

from __future__ import annotations

import copy
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
    return _shape(vector_bits)[0]


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


def _panels(k: K.MatmulKernel, vector_bits: int) -> tuple[int, int, int]:
    """(batches, column panels, panel width)."""
    vec, nv, _ = _shape(vector_bits)
    nc = vec * nv
    return math.prod(k.out.shape[:-2]), -(-k.mnk[1] // nc), nc


#: Fewer (batch, panel) work items than this split M into row blocks too, so that every
#: worker of local-task gets some (a 7x7 convolution has a single column panel).
MIN_ITEMS = 8


def m_blocks(m: int, items: int, vector_bits: int) -> tuple[int, int]:
    """(rows per block, blocks) for an M of ``m`` rows and ``items`` other work items."""
    mr = _shape(vector_bits)[2]
    if items >= MIN_ITEMS or m <= mr:
        return m, 1
    want = min(-(-MIN_ITEMS // items), -(-m // mr))
    rows = -(-(-(-m // want)) // mr) * mr
    return rows, -(-m // rows)


def plan(k: K.MatmulKernel, machine) -> tuple[int, int]:
    batches, panels, _ = _panels(k, machine.vector_bits)
    _, blocks = m_blocks(k.mnk[0], batches * panels, machine.vector_bits)
    return batches * panels * blocks, 1


class _Tiler:
    """The packed-B register-tiled product ``C[m, n0:n0+ncols] = A[m, :] @ Bpanel`` of one
    panel, shared by matmul and conv2d (whose B panel is packed from the image: im2col done
    one panel at a time, never materialised)."""

    def __init__(self, f: Func, machine, kd: int, scratch: bool = True, total_cols: int = 0,
                 a_k: int = 1) -> None:
        b = self.b = f.b
        self.f = f
        self.vec, self.nv, self.mr = _shape(machine.vector_bits)
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
        # A last panel of 16q + 1 columns (ResNet's 7x7 layers: 49) computes q vectors and
        # its last column as dot products along k (vectors of A's rows times the column,
        # copied contiguous here): q + 1 vectors would waste (16 - 1) / 16 of the last one.
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
                    cv = (b.load(cp, typ=self.vt, align=64) if mask is None else
                          b.call(self.mload, [cp, four, mask, self.zero_v]))
                    for r in range(mr):
                        ap = A.ptr(b.add(arow[r], kq), False)
                        av = (b.load(ap, typ=self.vt, align=4) if mask is None else
                              b.call(self.mload, [ap, four, mask, self.zero_v]))
                        b.store(b.call(self.fma, [av, cv, b.load(dots[r])]), dots[r])

                def k16(kq: ir.Value) -> None:
                    # (a loop, not 16 copies: those made the 7x7 layers' kernels take 8 s
                    # each to compile, a copy per K block, tile height and branch)
                    f.loop(kq, b.add(kq, i64(16)), kstep, name="k")
                    dot_step(kq, None)
                whole = k0 + (k1 - k0) // 16 * 16
                f.loop(k0, whole, k16, step=16, name="k16")
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
    t = _Tiler(f, machine, Kd, total_cols=N, a_k=a_k)

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


# ---------------------------------------------------------------------------------------------
# conv2d: out[n, g*og + o, p] = sum_{c, ky, kx} W[g*og + o, c, ky, kx] * image column (c, ky, kx)
# at output position p; A = W (og x CG*KH*KW, row-major already), B = the im2col panel.


def conv_applies(k: K.Kernel) -> bool:
    return (isinstance(k, K.Conv2dKernel) and k.input.dtype == k.filter.dtype == k.out.dtype
            == "float32" and (k.acc_dtype or "float32") == "float32"
            and (k.bias is None or k.bias.dtype == "float32") and k.out.num_elements > 0)


def _conv_panels(k: K.Conv2dKernel, machine) -> tuple[int, int]:
    vec, nv, _ = _shape(machine.vector_bits)
    p = k.out.shape[2] * k.out.shape[3]
    return k.out.shape[0] * k.groups, -(-p // (vec * nv))


#: From this many (image, group, column panel) items up, a conv splits M only as matmul does
#: (row blocks of one panel next to each other). Below it (but above one item), M is cut in
#: two halves that are the *outer* index: the local drivers hand each worker a contiguous run
#: of workgroups, and with few panels, the last one partial (ResNet's 28x28 and 14x14: 13
#: and 4 panels, the last a quarter wide), whole panels per worker left one worker 12-20%
#: more work. Half of M for every panel per worker is even whatever the panel widths; each
#: worker then packs every panel once (packing is a few percent of a panel's product).
BALANCED_ITEMS = 24


def conv_split(k: K.Conv2dKernel, machine) -> tuple[int, int, bool]:
    """(rows per M block, M blocks, whether the block is the outer index)."""
    outer, panels = _conv_panels(k, machine)
    og = k.out.shape[1] // k.groups
    items = outer * panels
    if items == 1 or items >= BALANCED_ITEMS or og < 2:
        rows, blocks = m_blocks(og, items, machine.vector_bits)
        return rows, blocks, False
    return -(-og // 2), 2, True


#: Pack stride-1 "same" convolutions a vector of the panel at a time (see pack_linear).
LINEAR_PACKING = True


def conv_plan(k: K.Conv2dKernel, machine) -> tuple[int, int]:
    outer, panels = _conv_panels(k, machine)
    _, blocks, _ = conv_split(k, machine)
    return outer * panels * blocks, 1


def lower_conv2d(f: Func, k: K.Conv2dKernel, ptrs: Sequence[ir.Value], first: ir.Value,
                 end: ir.Value, machine) -> None:
    b = f.b
    N, O, OH, OW = k.out.shape
    _, C_in, H, W = k.input.shape
    CG, KH, KW = k.filter.shape[1:]
    G = k.groups
    og = O // G
    sh, sw = k.strides
    dh, dw = k.dilation
    top, left = k.padding[0], k.padding[1]
    P, Kd = OH * OW, CG * KH * KW
    outer_n, panels = _conv_panels(k, machine)
    rows, blocks, m_outer = conv_split(k, machine)
    X, Wt, C = (Operand.dense(f, ptrs, op) for op in (k.input, k.filter, k.out))
    bias = Operand.dense(f, ptrs, k.bias) if k.bias is not None else None
    epi_ops = epilogue_operands(f, k.epilogue, ptrs)
    flat_ops = _flat_spatial(k.epilogue, epi_ops, OW)
    plain = (KH, KW, sh, sw, top, left) == (1, 1, 1, 1, 0, 0) and k.padding[2:] == (0, 0)
    linear = (sh, sw) == (1, 1) and OW == W and LINEAR_PACKING
    t = _Tiler(f, machine, Kd, scratch=not plain, total_cols=P)
    nc = t.nc

    def work(item: ir.Value) -> None:
        if m_outer:
            blk, item = b.udiv(item, i64(outer_n * panels)), b.urem(item, i64(outer_n * panels))
        else:
            blk, item = b.urem(item, i64(blocks)), b.udiv(item, i64(blocks))
        outer, p = b.udiv(item, i64(panels)), b.urem(item, i64(panels))
        n, g = b.udiv(outer, i64(G)), b.urem(outer, i64(G))
        n0 = b.mul(p, i64(nc))
        ncols = f.min64(i64(nc), b.sub(i64(P), n0))
        x0 = b.mul(b.add(b.mul(n, i64(C_in)), b.mul(g, i64(CG))), i64(H * W))

        def pack_panel():
            """im2col of the panel: runs (one per output row the panel crosses) outer, then
            ky, kx and vectors of the run, channels innermost. The masks (image columns, the
            run's end, the image row) depend on everything but the channel, so the channel
            loop is only copies: one masked load (stride 1), wide masked load + shuffle
            (strides up to WIDE_STRIDE) or masked gather, and one masked store per kx.
            (Channels outer recomputed the masks for every channel, and strides > 1 copied
            a float at a time: packing took 15-25% of ResNet's 3x3 and stride-2 layers.)"""
            vec = t.vec
            pos = f.var(I64, i64(0))
            head = b.append_basic_block("run.head")
            body = b.append_basic_block("run.body")
            done = b.append_basic_block("run.done")
            b.branch(head)
            b.position_at_end(head)
            j = b.load(pos)
            b.cbranch(b.icmp_signed("<", j, ncols), body, done)
            b.position_at_end(body)
            q = b.add(n0, j)
            oy, ox = b.udiv(q, i64(OW)), b.urem(q, i64(OW))
            seg = f.min64(b.sub(i64(OW), ox), b.sub(ncols, j))
            seg_v = splat(b, seg, vec, I64)
            ox_v = splat(b, ox, vec, I64)
            loader = StridedLoad(f, t.vec, X, sw)

            def ky_rows(ky):
                iy = b.add(b.sub(b.mul(oy, i64(sh)), i64(top)), b.mul(ky, i64(dh)))
                inside = b.icmp_unsigned("<", iy, i64(H))
                row_in = splat(b, inside, vec, I1)
                src_row = b.add(x0, b.add(b.mul(b.select(inside, iy, i64(0)), i64(W)),
                                          b.mul(ox, i64(sw))))
                dst_row = b.add(b.mul(b.mul(ky, i64(KW)), i64(nc)), j)

                def vrun(u):
                    lane = b.add(t.lanes, splat(b, u, vec, I64))
                    st_mask = b.and_(b.icmp_signed("<", lane, seg_v), row_in)
                    at = b.add(ox_v, lane)      # output column of each lane
                    masks = []
                    for kx in range(KW):
                        off = kx * dw - left
                        lo_x = max(0, -(off // sw))          # first ox inside the image
                        hi_x = max(0, -(-(W - off) // sw))   # first ox past it
                        m = b.and_(b.icmp_signed(">=", at, splat(b, i64(lo_x), vec, I64)),
                                   b.icmp_signed("<", at, splat(b, i64(hi_x), vec, I64)))
                        masks.append(loader.mask(b.and_(st_mask, m)))
                    src_u = b.add(src_row, b.mul(u, i64(sw)))
                    dst_u = b.add(dst_row, u)
                    full_mask = b.icmp_signed("<", lane, seg_v)

                    def chan(c):
                        src_c = b.add(src_u, b.mul(c, i64(H * W)))
                        dst_c = b.add(dst_u, b.mul(c, i64(KH * KW * nc)))
                        for kx in range(KW):
                            v = loader.load(b.add(src_c, i64(kx * dw - left)), masks[kx])
                            dst = b.gep(t.packed, [b.add(dst_c, i64(kx * nc))],
                                        source_etype=F32)
                            b.call(t.mstore, [v, dst, ir.Constant(I32, 4), full_mask])
                    f.loop(0, CG, chan, name="ch")
                f.loop(0, seg, vrun, step=vec, name="run")
            f.loop(0, KH, ky_rows, name="ky")
            b.store(b.add(j, seg), pos)
            b.branch(head)
            b.position_at_end(done)
            with b.if_then(b.icmp_signed("<", ncols, i64(nc))):
                tail = [b.icmp_signed(">=", b.add(t.lanes, splat(b, i64(jv * vec), vec, I64)),
                                      splat(b, ncols, vec, I64)) for jv in range(t.nv)]

                def zero_row(kk):
                    row = t.row_ptr(kk)
                    for jv in range(t.nv):
                        b.call(t.mstore, [t.zero_v, b.gep(row, [i64(jv * vec)],
                                                          source_etype=F32),
                                          ir.Constant(I32, 4), tail[jv]])
                f.loop(0, Kd, zero_row, name="zt")

        def pack_linear():
            """Stride 1 with OW == W (a "same" padded 3x3): the image index of output
            position p for tap (ky, kx) is p + (ky*dh - top)*W + kx*dw - left, so a packed
            row is one masked load per vector of the panel, whatever output rows the panel
            crosses. The masks (tap inside the image, position inside the panel) depend on
            the panel only; the channel loop is loads and aligned stores. (The run-wise
            packing above cut the panel at every output row, its stores misaligned.)"""
            vec = t.vec
            masks = {}
            for v in range(t.nv):
                pos = b.add(t.lanes, splat(b, b.add(n0, i64(v * vec)), vec, I64))
                live = b.icmp_signed("<", pos, splat(b, i64(P), vec, I64))
                oy = b.udiv(pos, splat(b, i64(OW), vec, I64))
                ox = b.urem(pos, splat(b, i64(OW), vec, I64))
                for ky in range(KH):
                    iy = b.add(oy, splat(b, i64(ky * dh - top), vec, I64))
                    row_in = b.and_(live, b.icmp_unsigned("<", iy, splat(b, i64(H), vec, I64)))
                    for kx in range(KW):
                        ix = b.add(ox, splat(b, i64(kx * dw - left), vec, I64))
                        masks[v, ky, kx] = b.and_(row_in, b.icmp_unsigned(
                            "<", ix, splat(b, i64(W), vec, I64)))

            def chan(cg):
                src = b.add(x0, b.add(b.mul(cg, i64(H * W)), n0))
                dst = b.mul(cg, i64(KH * KW * nc))
                for ky in range(KH):
                    for kx in range(KW):
                        for v in range(t.nv):
                            off = (ky * dh - top) * W + kx * dw - left + v * vec
                            val = b.call(t.mload, [X.ptr(b.add(src, i64(off)), False),
                                                   ir.Constant(I32, 4), masks[v, ky, kx],
                                                   t.zero_v])
                            at = b.add(dst, i64((ky * KW + kx) * nc + v * vec))
                            b.store(val, b.gep(t.packed, [at], source_etype=F32), align=64)
            f.loop(0, CG, chan, name="ch")

        if plain:
            # 1x1, stride 1, no padding: B is the image itself, (CG, H*W) row-major, read in
            # place (packing copies of it were 2-8% of ResNet's 1x1 layers here)
            t.direct = lambda kk: X.ptr(b.add(x0, b.add(b.mul(kk, i64(P)), n0)), False)
        elif linear:
            t.pack_once(item, pack_linear)
        else:
            t.pack_once(item, pack_panel)

        a0 = b.mul(g, i64(og * Kd))
        c0 = b.mul(b.add(b.mul(n, i64(O)), b.mul(g, i64(og))), i64(P))
        epi = None
        if bias is not None or k.epilogue is not None:
            def epi(m, q, idx):
                o = b.add(b.mul(g, i64(og)), m)
                v = C.load_at(idx)
                if bias is not None:
                    v = b.fadd(v, bias.load([o]))
                if k.epilogue is not None and flat_ops is not None:
                    v = emit_epilogue(f, k.epilogue, ptrs, [n, o, q], [v], ["float32"],
                                      ["float32"], flat_ops)[0]
                elif k.epilogue is not None:
                    coords = [n, o, b.udiv(q, i64(OW)), b.urem(q, i64(OW))]
                    v = emit_epilogue(f, k.epilogue, ptrs, coords, [v], ["float32"],
                                      ["float32"], epi_ops)[0]
                C.store_at(idx, v)
        if flat_ops is not None and any(op.coeffs[2] for op in flat_ops):
            spatial = [op for op in flat_ops if op.coeffs[2]]
            t.prefetch = lambda m, q: [op.ptr(op.index([n, b.add(b.mul(g, i64(og)), m), q]),
                                              False) for op in spatial]
        t.blocked(blk, rows, blocks, og, Wt, a0, Kd, 1, C, c0, P, n0, ncols, epi, P)

    f.loop(first, end, work, name="wg")
    t.release()


def _flat_spatial(epi: K.Epilogue | None, ops: list[Operand], ow: int
                  ) -> list[Operand] | None:
    """The epilogue's operands indexed by (n, o, output position) instead of (n, o, oy, ox),
    when every one of them is contiguous over (oy, ox) (a residual, a per-channel scale) and
    the body does not read coordinates. The udiv/urem by OW per element otherwise kept the
    epilogue loop scalar: a residual add + relu cost 0.3-0.8 ms on ResNet's 56x56 layers."""
    if epi is None or any(isinstance(a, K.IterIndex) for op in epi.body for a in op.args) \
            or any(isinstance(y, K.IterIndex) for y in epi.yields):
        return None
    if any(op.coeffs[2] != ow * op.coeffs[3] for op in ops):
        return None
    flat = []
    for op in ops:
        c = copy.copy(op)
        c.coeffs = (op.coeffs[0], op.coeffs[1], op.coeffs[3])
        flat.append(c)
    return flat


#: Strided packing up to this stride loads ``VEC * stride`` contiguous floats per vector and
#: keeps every stride-th lane (one shuffle); past it, a gather.
WIDE_STRIDE = 4


class StridedLoad:
    """Loads of VEC elements ``stride`` apart, masked per lane (masked-off lanes read nothing
    and give ``fill``): a plain masked load at stride 1; up to WIDE_STRIDE, one masked load
    of VEC*stride contiguous floats whose every stride-th lane is kept (a shuffle); past it a
    masked gather."""

    def __init__(self, f: Func, vec: int, X: Operand, stride: int, fill: float = 0.0) -> None:
        self.f, self.vec, self.X, self.sw = f, vec, X, stride
        self.vt = vt = ir.VectorType(F32, vec)
        self.fill = ir.Constant(vt, [fill] * vec)
        if stride == 1:
            self.mload = declare(f.module, f"llvm.masked.load.v{vec}f32.p0", vt,
                                 [PTR, I32, ir.VectorType(I1, vec), vt])
        elif stride <= WIDE_STRIDE:
            wide = vec * stride
            self.wt = ir.VectorType(F32, wide)
            self.wload = declare(f.module, f"llvm.masked.load.v{wide}f32.p0", self.wt,
                                 [PTR, I32, ir.VectorType(I1, wide), self.wt])
            self.spread = ir.Constant(ir.VectorType(I32, wide), [e // stride for e in range(wide)])
            self.kept = ir.Constant(ir.VectorType(I1, wide), [e % stride == 0 for e in range(wide)])
            self.pick = ir.Constant(ir.VectorType(I32, vec), [e * stride for e in range(vec)])
            self.wfill = ir.Constant(self.wt, [fill] * wide)
        else:
            pv = ir.VectorType(PTR, vec)
            self.gather = declare(f.module, f"llvm.masked.gather.v{vec}f32.v{vec}p0", vt,
                                  [pv, I32, ir.VectorType(I1, vec), vt])
            self.steps = ir.Constant(ir.VectorType(I64, vec),
                                     [4 * e * stride for e in range(vec)])   # bytes

    def mask(self, lanes: ir.Value) -> ir.Value:
        """The load mask for output lanes ``lanes`` (built once, outside the channel loop)."""
        if 1 < self.sw <= WIDE_STRIDE:
            b = self.f.b
            spread = b.shuffle_vector(lanes, ir.Constant(lanes.type, ir.Undefined), self.spread)
            return b.and_(spread, self.kept)
        return lanes

    def load(self, index: ir.Value, mask: ir.Value) -> ir.Value:
        b = self.f.b
        four = ir.Constant(I32, 4)
        if self.sw == 1:
            return b.call(self.mload, [self.X.ptr(index, False), four, mask, self.fill])
        if self.sw <= WIDE_STRIDE:
            v = b.call(self.wload, [self.X.ptr(index, False), four, mask, self.wfill])
            return b.shuffle_vector(v, ir.Constant(self.wt, ir.Undefined), self.pick)
        # (llvmlite types a GEP with a vector index as a scalar pointer: address arithmetic)
        base = splat(b, b.ptrtoint(self.X.ptr(index, False), I64), self.vec, I64)
        ptrs = b.inttoptr(b.add(base, self.steps), ir.VectorType(PTR, self.vec))
        return b.call(self.gather, [ptrs, four, mask, self.fill])


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
