"""The large-GEMM path: 128x128 float32 tiles, 8x8 accumulators per invocation, vec4 traffic.

For row-major (non-transposed) operands whose K and N are multiples of 4 and whose offsets are
16-byte aligned, the classic SIMT GEMM recipe:

* 256 invocations as 16 x 16; invocation (tx, ty) owns rows ``4*ty + {0..3}`` and
  ``64 + 4*ty + {0..3}`` and the same pattern of columns around ``4*tx``: its 8x8 block is held
  in 16 vec4 accumulators (registers once the driver promotes the Function variables);
* K walks in slices of 8. A 128x8 slice of A is loaded with one vec4 per invocation and stored
  transposed as ``As[k][m]``; the 8x128 slice of B with one vec4 per invocation as ``Bs[k][n]``.
  Both live in shared memory as vec4 arrays, so the inner loop reads 4 vec4s per k and issues
  64 FMAs;
* the next slice is fetched into registers while the current one is multiplied, then staged
  into the other half of a double buffer (16 KiB in all): one barrier per slice;
* edges are zero-filled by guarded loads and skipped stores; results leave as vec4 stores.
"""

from __future__ import annotations

import math
from contextlib import nullcontext

from hal_core.compiler.kernel_ir import MatmulKernel
from hal_vulkan.spirv import scalar
from hal_vulkan.spirv.builder import BuiltIn, Op
from hal_vulkan.spirv.generic import Plan, apply_epilogue
from hal_vulkan.spirv.matmul import _batch_coords, _batch_offset
from hal_vulkan.spirv.shader import Limit, Shader, ShaderFactory

BM = BN = 128
BK = 8
THREADS = 256
A_STAGE, B_STAGE = BK * BM // 4, BK * BN // 4  # vec4s per slice of A and of B
SHARED_BYTES = 2 * 16 * (A_STAGE + B_STAGE)     # two slices each (double buffered): 16 KiB


def vec4_matmul_fits(k: MatmulKernel, limit: Limit) -> bool:
    m, n, kk = k.mnk
    if {k.lhs.dtype, k.rhs.dtype, k.out.dtype, k.acc_dtype or k.out.dtype} != {"float32"}:
        return False
    if k.transpose_a or k.transpose_b or kk % 4 or n % 4 or m < 64 or n < 64:
        return False
    if any(op.byte_offset % 16 for op in (k.lhs, k.rhs, k.out)):
        return False
    if k.lhs.shape[-1] != kk or k.out.shape[-1] != n:
        return False
    threads = min(limit("maxComputeWorkGroupInvocations"), limit("maxComputeWorkGroupSize")[0])
    grid = (-(-n // BN), -(-m // BM), math.prod(k.out.shape[:-2]))
    return (threads >= THREADS and SHARED_BYTES <= limit("maxComputeSharedMemorySize")
            and all(g <= c for g, c in zip(grid, limit("maxComputeWorkGroupCount"))))


def lower_vec4_matmul(k: MatmulKernel, factory: ShaderFactory, limit: Limit) -> Plan:
    m, n, kk = k.mnk
    batch_shape = k.out.shape[:-2]
    grid = (-(-n // BN), -(-m // BM), math.prod(batch_shape))
    sh: Shader = factory((THREADS, 1, 1), fast_math=True)
    f, u, f32 = sh.f, sh.u, sh.f32
    v4 = sh.m.t_vec(f32, 4)
    a_sh = sh.shared_array(v4, 2 * A_STAGE)   # As[stage][k][m/4]
    b_sh = sh.shared_array(v4, 2 * B_STAGE)   # Bs[stage][k][n/4]
    wg = sh.builtin(BuiltIn.WorkgroupId)
    col0 = sh.mul(sh.component(wg, 0), u(BN))
    row0 = sh.mul(sh.component(wg, 1), u(BM))
    bz = sh.component(wg, 2)
    lid = sh.local_id()
    tx, ty = sh.umod(lid, u(16)), sh.udiv(lid, u(16))
    batch = _batch_coords(sh, bz, batch_shape)
    a_base = _batch_offset(sh, k.lhs.shape, batch, len(batch_shape))
    b_base = _batch_offset(sh, k.rhs.shape, batch, len(batch_shape))
    zero4 = sh.m.const_composite(v4, [sh.const("float32", 0.0)] * 4)

    # This invocation's share of each slice: A row lid/2, k (lid%2)*4; B k lid/32, n (lid%32)*4.
    a_row, a_k = sh.add(row0, sh.udiv(lid, u(2))), sh.mul(sh.umod(lid, u(2)), u(4))
    b_k, b_col = sh.udiv(lid, u(32)), sh.add(col0, sh.mul(sh.umod(lid, u(32)), u(4)))

    def fetch(k0: int) -> tuple[int, int]:
        """Guarded vec4 loads of this invocation's A and B elements of the slice at ``k0``."""
        ga, gb = sh.add(k0, a_k), sh.add(k0, b_k)
        a_ok = f.op(Op.LogicalAnd, sh.bool, sh.ult(a_row, u(m)), sh.ult(ga, u(kk)))
        b_ok = f.op(Op.LogicalAnd, sh.bool, sh.ult(gb, u(kk)), sh.ult(b_col, u(n)))
        a_elem = sh.add(a_base, sh.linear(0, [(kk, a_row), (1, ga)]))
        b_elem = sh.add(b_base, sh.linear(0, [(n, gb), (1, b_col)]))
        if aligned:  # every load in bounds: plain loads the driver may issue early
            return (sh.load_vec4(k.lhs.binding, _vec4_index(sh, k.lhs, a_elem)),
                    sh.load_vec4(k.rhs.binding, _vec4_index(sh, k.rhs, b_elem)))
        return (_guarded_vec4(sh, k.lhs, a_ok, a_elem, zero4),
                _guarded_vec4(sh, k.rhs, b_ok, b_elem, zero4))

    # Whole tiles only: no bounds checks at all; the prefetch after the last slice is clamped
    # to re-read that slice instead of running past the operands.
    aligned = m % BM == 0 and n % BN == 0 and kk % BK == 0
    a_slot = sh.udiv(lid, u(2))  # m of the A element this invocation stages
    a_kq = sh.mul(sh.umod(lid, u(2)), u(4))
    b_idx = sh.add(sh.mul(b_k, u(BN // 4)), sh.umod(lid, u(32)))

    def stage_in(a_val: int, b_val: int, stage: int) -> None:
        """Store this invocation's A vec4 transposed (4 components of As[stage][k][m]) and its
        B vec4 into Bs[stage][k][n]."""
        a_base_idx = sh.add(sh.mul(stage, u(A_STAGE)), sh.udiv(a_slot, u(4)))
        for c in range(4):
            idx = sh.add(a_base_idx, sh.mul(sh.add(a_kq, u(c)), u(BM // 4)))
            ptr = f.op(Op.AccessChain, sh.m.t_ptr(4, f32), a_sh, idx, sh.umod(a_slot, u(4)))
            f.store(ptr, f.op(Op.CompositeExtract, f32, a_val, c))
        f.store(sh.shared_ptr(b_sh, v4, sh.add(sh.mul(stage, u(B_STAGE)), b_idx)), b_val)

    stage_in(*fetch(u(0)), u(0))
    sh.barrier()
    accs = [[sh.var(v4, zero4) for _ in range(2)] for _ in range(8)]
    cur = sh.var(sh.u32, u(0))
    with sh.loop(u(0), u(kk), u(BK)) as k0:
        # Fetch the next slice into registers, multiply the current one out of shared memory,
        # then stage the next into the other buffer: one barrier per slice.
        stage = f.load(sh.u32, cur)
        next_k0 = sh.add(k0, u(BK))
        if aligned:
            next_k0 = f.ext(sh.u32, scalar.UMIN, next_k0, u(kk - BK))
        next_a, next_b = fetch(next_k0)
        a_off, b_off = sh.mul(stage, u(A_STAGE)), sh.mul(stage, u(B_STAGE))
        for kq in range(BK):
            a_vecs = [f.load(v4, sh.shared_ptr(a_sh, v4, sh.add(
                a_off, sh.add(ty, u(kq * BM // 4 + 16 * h))))) for h in range(2)]
            b_vecs = [f.load(v4, sh.shared_ptr(b_sh, v4, sh.add(
                b_off, sh.add(tx, u(kq * BN // 4 + 16 * h))))) for h in range(2)]
            for i in range(8):
                a_i = f.op(Op.CompositeExtract, f32, a_vecs[i // 4], i % 4)
                for h in range(2):
                    acc = accs[i][h]
                    prod = f.op(Op.VectorTimesScalar, v4, b_vecs[h], a_i)
                    f.store(acc, f.op(Op.FAdd, v4, f.load(v4, acc), prod))
        other = f.op(Op.BitwiseXor, sh.u32, stage, u(1))
        stage_in(next_a, next_b, other)
        sh.barrier()
        f.store(cur, other)
    ro = len(k.out.shape)
    for i in range(8):
        row = sh.add(row0, sh.add(sh.mul(ty, u(4)), u(64 * (i // 4) + i % 4)))
        for h in range(2):
            col = sh.add(col0, sh.add(sh.mul(tx, u(4)), u(64 * h)))
            with (nullcontext() if aligned else sh.if_(
                    f.op(Op.LogicalAnd, sh.bool, sh.ult(row, u(m)), sh.ult(col, u(n))))):
                val = f.load(v4, accs[i][h])
                if k.epilogue is not None:
                    parts = []
                    for c in range(4):
                        coords = ({d: batch[d] for d in range(len(batch))}
                                  | {ro - 2: row, ro - 1: sh.add(col, u(c))})
                        (v, dt), = apply_epilogue(
                            sh, k.epilogue, [(f.op(Op.CompositeExtract, f32, val, c), "float32")],
                            coords)
                        parts.append(v if dt == "float32" else scalar.cast(sh, dt, "float32", v))
                    val = f.op(Op.CompositeConstruct, v4, *parts)
                out_elem = sh.linear(k.out.byte_offset // 4, [(m * n, bz), (n, row), (1, col)])
                sh.store_vec4(k.out.binding, sh.udiv(out_elem, u(4)), val)
    sh.finish()
    return Plan(THREADS, grid, SHARED_BYTES)


def _vec4_index(sh: Shader, operand, elem: int) -> int:
    return sh.add(sh.u(operand.byte_offset // 16), sh.udiv(elem, sh.u(4)))


def _guarded_vec4(sh: Shader, operand, ok: int, elem: int, zero4: int) -> int:
    v4 = sh.m.t_vec(sh.f32, 4)
    result = sh.var(v4, zero4)
    with sh.if_(ok):
        sh.f.store(result, sh.load_vec4(operand.binding, _vec4_index(sh, operand, elem)))
    return sh.f.load(v4, result)
