"""Shared-memory tiled float32 GEMM for real GPUs: matmul, and conv2d as an implicit GEMM.

Each workgroup computes a BM x BN output tile; its TX x TY invocations each hold a TM x TN block
of accumulators in registers (rows ``ty + TY*i``, columns ``tx + TX*j``: neighbouring
invocations touch neighbouring columns, so shared-memory reads are conflict-free and stores
coalesce). K is walked in BK-deep slices staged in shared memory: ``As[k][m]`` (transposed, so
the inner loop reads a row of it) and ``Bs[k][n]``. Edges load zeros and skip stores, so any
M, N, K work. The grid is (N tiles, M tiles, batch).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hal_core.compiler.kernel_ir import MatmulKernel
from hal_vulkan.spirv import scalar
from hal_vulkan.spirv.builder import BuiltIn, Op
from hal_vulkan.spirv.generic import Plan, apply_epilogue
from hal_vulkan.spirv.shader import Limit, Shader, ShaderFactory

TX = 16
BK = 16


@dataclass(frozen=True)
class Tiling:
    bm: int
    bn: int
    ty: int

    @property
    def threads(self) -> int:
        return TX * self.ty

    @property
    def shared_bytes(self) -> int:
        return 4 * BK * (self.bm + self.bn)


def choose_tiling(m: int, n: int, limit: Limit) -> Tiling | None:
    max_threads = min(limit("maxComputeWorkGroupInvocations"), limit("maxComputeWorkGroupSize")[0])
    for t in (Tiling(128, 128, 16), Tiling(64, 64, 16), Tiling(64, 64, 8)):
        if (t.threads <= max_threads and t.shared_bytes <= limit("maxComputeSharedMemorySize")
                and min(m, n) >= t.bm // 2):
            return t
    return None


def gemm_fits(m: int, n: int, kk: int, batches: int, limit: Limit) -> Tiling | None:
    """The tiling for an (m x kk) @ (kk x n) float32 product, or None if too small to pay."""
    if m * n < 64 * 64 or kk < 16:
        return None
    t = choose_tiling(m, n, limit)
    if t is None:
        return None
    grid = (-(-n // t.bn), -(-m // t.bm), batches)
    return t if all(g <= c for g, c in zip(grid, limit("maxComputeWorkGroupCount"))) else None


def _all_f32(*dtypes: str | None) -> bool:
    return set(dtypes) == {"float32"}


def tiled_matmul_fits(k: MatmulKernel, limit: Limit) -> bool:
    m, n, kk = k.mnk
    return (_all_f32(k.lhs.dtype, k.rhs.dtype, k.out.dtype, k.acc_dtype or k.out.dtype)
            and gemm_fits(m, n, kk, math.prod(k.out.shape[:-2]), limit) is not None)


def lower_tiled_matmul(k: MatmulKernel, factory: ShaderFactory, limit: Limit) -> Plan:
    m, n, kk = k.mnk
    batch_shape = k.out.shape[:-2]
    t = gemm_fits(m, n, kk, math.prod(batch_shape), limit)
    sh: Shader = factory((t.threads, 1, 1), fast_math=True)
    bz = sh.component(sh.builtin(BuiltIn.WorkgroupId), 2)
    batch = _batch_coords(sh, bz, batch_shape)
    a_base = _batch_offset(sh, k.lhs.shape, batch, len(batch_shape))
    b_base = _batch_offset(sh, k.rhs.shape, batch, len(batch_shape))
    ro = len(k.out.shape)

    def load_a(row: int, kcol: int) -> int:  # A[m, k] of this batch
        return sh.load(k.lhs, sh.add(a_base, sh.linear(0, [(m, kcol), (1, row)] if k.transpose_a
                                                       else [(kk, row), (1, kcol)])))

    def load_b(krow: int, col: int) -> int:
        return sh.load(k.rhs, sh.add(b_base, sh.linear(0, [(kk, col), (1, krow)] if k.transpose_b
                                                       else [(n, krow), (1, col)])))

    def store(row: int, col: int, acc: int) -> None:
        coords = {d: batch[d] for d in range(len(batch))} | {ro - 2: row, ro - 1: col}
        (v, dt), = apply_epilogue(sh, k.epilogue, [(acc, "float32")], coords)
        if dt != k.out.dtype:
            v = scalar.cast(sh, dt, k.out.dtype, v)
        sh.store(k.out, sh.linear(0, [(m * n, bz), (n, row), (1, col)]), v)

    tiled_gemm(sh, t, m, n, kk, load_a, load_b, store)
    sh.finish()
    return Plan(t.threads, (-(-n // t.bn), -(-m // t.bm), math.prod(batch_shape)),
                t.shared_bytes)


def tiled_gemm(sh: Shader, t: Tiling, m: int, n: int, kk: int, load_a, load_b, store) -> None:
    """The tile loop: ``load_a(row, k)``/``load_b(k, col)`` run only in bounds (zeros
    elsewhere); ``store(row, col, acc)`` runs once per in-bounds output element."""
    f, f32, u = sh.f, sh.f32, sh.u
    tm, tn = t.bm // t.ty, t.bn // TX
    aligned = m % t.bm == 0 and n % t.bn == 0 and kk % BK == 0  # whole tiles: no bounds checks
    a_sh = sh.shared_array(f32, BK * t.bm)
    b_sh = sh.shared_array(f32, BK * t.bn)
    wg = sh.builtin(BuiltIn.WorkgroupId)
    col0 = sh.mul(sh.component(wg, 0), u(t.bn))
    row0 = sh.mul(sh.component(wg, 1), u(t.bm))
    lid = sh.local_id()
    tx, ty = sh.umod(lid, u(TX)), sh.udiv(lid, u(TX))
    zero = sh.const("float32", 0.0)
    accs = [[sh.var(f32, zero) for _ in range(tn)] for _ in range(tm)]
    with sh.loop(u(0), u(kk), u(BK)) as k0:
        # Stage A[row0:+BM, k0:+BK] as As[k][m] and B[k0:+BK, col0:+BN] as Bs[k][n].
        for r in range(t.bm * BK // t.threads):
            e = sh.add(lid, u(r * t.threads))
            row, kc = sh.udiv(e, u(BK)), sh.umod(e, u(BK))
            gr, gk = sh.add(row0, row), sh.add(k0, kc)
            ok = f.op(Op.LogicalAnd, sh.bool, sh.ult(gr, u(m)), sh.ult(gk, u(kk)))
            v = load_a(gr, gk) if aligned else _guarded_load(
                sh, ok, lambda gr=gr, gk=gk: load_a(gr, gk))
            f.store(sh.shared_ptr(a_sh, f32, sh.add(sh.mul(kc, u(t.bm)), row)), v)
        for r in range(t.bn * BK // t.threads):
            e = sh.add(lid, u(r * t.threads))
            kr, col = sh.udiv(e, u(t.bn)), sh.umod(e, u(t.bn))
            gk, gc = sh.add(k0, kr), sh.add(col0, col)
            ok = f.op(Op.LogicalAnd, sh.bool, sh.ult(gk, u(kk)), sh.ult(gc, u(n)))
            v = load_b(gk, gc) if aligned else _guarded_load(
                sh, ok, lambda gk=gk, gc=gc: load_b(gk, gc))
            f.store(sh.shared_ptr(b_sh, f32, sh.add(sh.mul(kr, u(t.bn)), col)), v)
        sh.barrier()
        for kq in range(BK):
            a_vals = [f.load(f32, sh.shared_ptr(a_sh, f32, sh.add(ty, u(kq * t.bm + t.ty * i))))
                      for i in range(tm)]
            b_vals = [f.load(f32, sh.shared_ptr(b_sh, f32, sh.add(tx, u(kq * t.bn + TX * j))))
                      for j in range(tn)]
            for i in range(tm):
                for j in range(tn):
                    acc = accs[i][j]
                    f.store(acc, f.op(Op.FAdd, f32, f.load(f32, acc),
                                      f.op(Op.FMul, f32, a_vals[i], b_vals[j])))
        sh.barrier()
    for i in range(tm):
        row = sh.add(row0, sh.add(ty, u(t.ty * i)))
        for j in range(tn):
            col = sh.add(col0, sh.add(tx, u(TX * j)))
            if aligned:
                store(row, col, f.load(f32, accs[i][j]))
                continue
            inside = f.op(Op.LogicalAnd, sh.bool, sh.ult(row, u(m)), sh.ult(col, u(n)))
            with sh.if_(inside):
                store(row, col, f.load(f32, accs[i][j]))


def _guarded_load(sh: Shader, ok: int, load) -> int:
    """``load()`` where ``ok``, else 0.0 (the load itself only runs where ok)."""
    result = sh.var(sh.f32, sh.const("float32", 0.0))
    with sh.if_(ok):
        sh.f.store(result, load())
    return sh.f.load(sh.f32, result)


def _batch_coords(sh: Shader, bz: int, batch_shape: tuple[int, ...]) -> list[int]:
    coords = []
    rest = bz
    for d in reversed(range(len(batch_shape))):
        if d == 0:
            coords.append(rest)
        else:
            coords.append(sh.umod(rest, sh.u(batch_shape[d])))
            rest = sh.udiv(rest, sh.u(batch_shape[d]))
    return coords[::-1]


def _batch_offset(sh: Shader, shape: tuple[int, ...], batch: list[int], nb: int) -> int:
    """Element offset of an operand's matrix for the output batch ``batch`` (broadcasting)."""
    rb = len(shape) - 2
    terms = []
    for j in range(rb):
        if shape[j] != 1:
            terms.append((math.prod(shape[j + 1:]), batch[j + nb - rb]))
    return sh.linear(0, terms)
