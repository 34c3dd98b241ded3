"""float32 conv2d through the register-tiled micro-kernel of :mod:`hal_llvm_cpu.gemm`.

out[n, g*og + o, p] = sum_{c, ky, kx} W[g*og + o, c, ky, kx] * image column (c, ky, kx) at
output position p: A = W (og x CG*KH*KW, row-major already), B = the im2col panel, packed
one panel at a time (never materialised), or read in place for 1x1 stride-1 convolutions.
"""

from __future__ import annotations

import copy
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
from hal_llvm_cpu.gemm import Tiler, m_blocks, splat, tile_shape


def conv_applies(k: K.Kernel) -> bool:
    return (isinstance(k, K.Conv2dKernel) and k.input.dtype == k.filter.dtype == k.out.dtype
            == "float32" and (k.acc_dtype or "float32") == "float32"
            and (k.bias is None or k.bias.dtype == "float32") and k.out.num_elements > 0)


def _conv_panels(k: K.Conv2dKernel, machine) -> tuple[int, int]:
    vec, nv, _ = tile_shape(machine.vector_bits)
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
    _, O, OH, OW = k.out.shape
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
    t = Tiler(f, machine, Kd, scratch=not plain, total_cols=P)
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
