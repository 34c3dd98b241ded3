"""float32 matmul and conv2d for Vulkan devices that are CPUs (lavapipe): register blocks, no
shared memory, no barriers, a rolled K loop.

The shared-memory tiles of :mod:`hal_vulkan.spirv.matmul` suit GPUs, but llvmpipe (lavapipe's
backend, Mesa 22.3 with LLVM 15 here) builds a compute shader as an LLVM coroutine that
suspends at each barrier, and compiles it when it is first dispatched. With the unrolled tile
code and 64 accumulators alive across the barriers, building the coroutine frame
(``llvm::coro::buildCoroutineFrame``) and generating code took 1.2-2.4 s per conv kernel:
54 s for ResNet-50's 32 kernels on a cold shader cache (benchmarks/bench_vulkan_lavapipe.py).

Here each invocation keeps a TM x TN block of accumulators in registers and reads its operands
straight from the buffers (the CPU's caches do what shared memory does on a GPU), and the K
loop stays a loop: the shader is a few KiB, and ResNet-50's first call takes 9 s. Later calls
are faster too (3 s against 5-8 s): on a CPU, shared memory and barriers cost more than they
save.

Invocation (tx, ty) of a TX x TY workgroup owns rows ``row0 + ty + TY*i`` and columns
``col0 + tx + TX*j``: llvmpipe runs 8 neighbouring invocations as the lanes of one SIMD
register, so they share A's rows and read neighbouring columns of B. Rows and columns past
the edge read the last valid one (loads stay in bounds without branches) and skip the store.
The grid is (N tiles, M tiles, batch or conv group).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hal_core.compiler.kernel_ir import Conv2dKernel, MatmulKernel
from hal_vulkan.spirv import scalar
from hal_vulkan.spirv.builder import BuiltIn, Op
from hal_vulkan.spirv.generic import Plan, apply_epilogue
from hal_vulkan.spirv.matmul import _batch_coords, _batch_offset
from hal_vulkan.spirv.shader import Limit, Shader, ShaderFactory

TX, TY = 8, 8  # 64 invocations: TX = llvmpipe's SIMD width on AVX2/AVX-512 (8 x f32)


@dataclass(frozen=True)
class Blocking:
    tm: int  # accumulator rows per invocation
    tn: int  # accumulator columns per invocation

    @property
    def bm(self) -> int:
        return TY * self.tm

    @property
    def bn(self) -> int:
        return TX * self.tn


def choose_blocking(m: int, n: int, batches: int, limit: Limit) -> Blocking | None:
    """4 x 4 accumulators, fewer rows where M is small; None where the grid is too large."""
    if m * n == 0 or min(limit("maxComputeWorkGroupInvocations"),
                         limit("maxComputeWorkGroupSize")[0]) < TX * TY:
        return None  # empty products keep the per-element path
    b = Blocking(4 if m > 2 * TY else (2 if m > TY else 1), 4)
    grid = (-(-n // b.bn), -(-m // b.bm), batches)
    return b if all(g <= c for g, c in zip(grid, limit("maxComputeWorkGroupCount"))) else None


@dataclass(frozen=True)
class Operand:
    """How :func:`blocked_gemm` reads A (by row) or B (by column): ``at(row or col)`` ->
    state, ``load(state, k, split_k(k))`` -> one float32 element."""

    at: Callable[[int], Any]
    load: Callable[[Any, int, Any], int]


@dataclass(frozen=True)
class Output:
    """How :func:`blocked_gemm` stores: ``store(row(r), col(c), acc)``."""

    row: Callable[[int], Any]
    col: Callable[[int], Any]
    store: Callable[[Any, Any, int], None]


def blocked_gemm(sh: Shader, b: Blocking, m: int, n: int, kk: int, a: Operand, bop: Operand,
                 out: Output, split_k: Callable[[int], Any] = lambda k: None) -> None:
    """``acc[row, col] = sum_k A[row, k] * B[k, col]`` over this invocation's block, stored
    through ``out``.

    Per-row and per-column state (``a.at``, ``bop.at``, ``out.row``, ``out.col``) is computed
    once per block row and column, outside the K loop and the stores; ``split_k(k)`` once per
    iteration, shared by the block's loads. Rows and columns passed to them are in range
    (clamped); ``out.store`` runs only for in-range elements."""
    f, f32, u = sh.f, sh.f32, sh.u
    wg = sh.builtin(BuiltIn.WorkgroupId)
    lid = sh.local_id()
    tx, ty = sh.umod(lid, u(TX)), sh.udiv(lid, u(TX))
    row0 = sh.add(sh.mul(sh.component(wg, 1), u(b.bm)), ty)
    col0 = sh.add(sh.mul(sh.component(wg, 0), u(b.bn)), tx)
    rows = [sh.add(row0, u(TY * i)) for i in range(b.tm)]
    cols = [sh.add(col0, u(TX * j)) for j in range(b.tn)]
    # Clamped copies: a block straddling the edge computes values it never stores.
    safe_rows = [f.ext(sh.u32, scalar.UMIN, r, u(m - 1)) for r in rows]
    safe_cols = [f.ext(sh.u32, scalar.UMIN, c, u(n - 1)) for c in cols]
    a_states = [a.at(r) for r in safe_rows]
    b_states = [bop.at(c) for c in safe_cols]
    zero = sh.const("float32", 0.0)
    accs = [[sh.var(f32, zero) for _ in range(b.tn)] for _ in range(b.tm)]
    with sh.loop(u(0), u(kk)) as k:
        ks = split_k(k)
        a_vals = [a.load(s, k, ks) for s in a_states]
        b_vals = [bop.load(s, k, ks) for s in b_states]
        for i in range(b.tm):
            for j in range(b.tn):
                acc = accs[i][j]
                f.store(acc, f.op(Op.FAdd, f32, f.load(f32, acc),
                                  f.op(Op.FMul, f32, a_vals[i], b_vals[j])))
    row_out = [out.row(r) for r in safe_rows]
    col_out = [out.col(c) for c in safe_cols]
    row_ok = [sh.ult(r, u(m)) for r in rows] if m % b.bm else None
    col_ok = [sh.ult(c, u(n)) for c in cols] if n % b.bn else None
    for i in range(b.tm):
        for j in range(b.tn):
            oks = ([row_ok[i]] if row_ok else []) + ([col_ok[j]] if col_ok else [])
            value = f.load(f32, accs[i][j])
            if not oks:
                out.store(row_out[i], col_out[j], value)
                continue
            ok = oks[0] if len(oks) == 1 else f.op(Op.LogicalAnd, sh.bool, *oks)
            with sh.if_(ok):
                out.store(row_out[i], col_out[j], value)


def _f32(*dtypes: str | None) -> bool:
    return set(dtypes) == {"float32"}


# ----- matmul

def blocked_matmul_fits(k: MatmulKernel, limit: Limit) -> bool:
    m, n, _ = k.mnk
    return (_f32(k.lhs.dtype, k.rhs.dtype, k.out.dtype, k.acc_dtype or k.out.dtype)
            and choose_blocking(m, n, math.prod(k.out.shape[:-2]), limit) is not None)


def lower_blocked_matmul(k: MatmulKernel, factory: ShaderFactory, limit: Limit) -> Plan:
    m, n, kk = k.mnk
    batch_shape = k.out.shape[:-2]
    batches = math.prod(batch_shape)
    b = choose_blocking(m, n, batches, limit)
    sh: Shader = factory((TX * TY, 1, 1), fast_math=True)
    bz = sh.component(sh.builtin(BuiltIn.WorkgroupId), 2)
    batch = _batch_coords(sh, bz, batch_shape)
    a_base = _batch_offset(sh, k.lhs.shape, batch, len(batch_shape))
    b_base = _batch_offset(sh, k.rhs.shape, batch, len(batch_shape))
    ro = len(k.out.shape)
    a_k, b_k = (m if k.transpose_a else 1), (1 if k.transpose_b else n)  # strides along K

    def load_a(base: int, kq: int, _) -> int:
        return sh.load(k.lhs, sh.add(base, sh.linear(0, [(a_k, kq)])))

    def load_b(base: int, kq: int, _) -> int:
        return sh.load(k.rhs, sh.add(base, sh.linear(0, [(b_k, kq)])))

    a = Operand(lambda row: sh.add(a_base, row if k.transpose_a else sh.mul(row, sh.u(kk))),
                load_a)
    bop = Operand(lambda col: sh.add(b_base, sh.mul(col, sh.u(kk)) if k.transpose_b else col),
                  load_b)
    out_base = sh.mul(bz, sh.u(m * n))

    def store(row: tuple[int, int], col: int, acc: int) -> None:
        coords = {d: batch[d] for d in range(len(batch))} | {ro - 2: row[0], ro - 1: col}
        (v, dt), = apply_epilogue(sh, k.epilogue, [(acc, "float32")], coords)
        if dt != k.out.dtype:
            v = scalar.cast(sh, dt, k.out.dtype, v)
        sh.store(k.out, sh.add(row[1], col), v)

    out = Output(lambda r: (r, sh.add(out_base, sh.mul(r, sh.u(n)))), lambda c: c, store)
    blocked_gemm(sh, b, m, n, kk, a, bop, out)
    sh.finish()
    return Plan(TX * TY, (-(-n // b.bn), -(-m // b.bm), batches))


# ----- conv2d as an implicit GEMM: out[o, (n, y, x)] = sum_(c, ky, kx) W[o, c, ky, kx] * X[...]

def blocked_conv_fits(k: Conv2dKernel, limit: Limit) -> bool:
    dtypes = [k.input.dtype, k.filter.dtype, k.out.dtype, k.acc_dtype or k.out.dtype]
    if k.bias is not None:
        dtypes.append(k.bias.dtype)
    n_img, o_total, oh, ow = k.out.shape
    return _f32(*dtypes) and choose_blocking(o_total // k.groups, n_img * oh * ow, k.groups,
                                             limit) is not None


def lower_blocked_conv(k: Conv2dKernel, factory: ShaderFactory, limit: Limit) -> Plan:
    n_img, o_total, oh, ow = k.out.shape
    _, c_in, h, w = k.input.shape
    _, cpg, kh, kw = k.filter.shape
    m, ncols, kk = o_total // k.groups, n_img * oh * ow, cpg * kh * kw
    (s_h, s_w), (d_h, d_w), (top, left) = k.strides, k.dilation, k.padding[:2]
    b = choose_blocking(m, ncols, k.groups, limit)
    sh: Shader = factory((TX * TY, 1, 1), fast_math=True)
    f, u = sh.f, sh.u
    g = sh.component(sh.builtin(BuiltIn.WorkgroupId), 2)
    first_o = sh.mul(g, u(m))
    # Every tap inside the image (no padding reaches it): no bounds checks at all.
    inside_always = (top == 0 and left == 0 and (oh - 1) * s_h + (kh - 1) * d_h < h
                     and (ow - 1) * s_w + (kw - 1) * d_w < w)

    def split_col(col: int) -> tuple[int, int, int]:
        x = sh.umod(col, u(ow))
        rest = sh.udiv(col, u(ow))
        return sh.udiv(rest, u(oh)), sh.umod(rest, u(oh)), x

    def load_a(base: int, kq: int, _) -> int:
        return sh.load(k.filter, sh.add(base, kq))

    def col_base(col: int) -> tuple[int, int, int]:
        """(first element of this column's image and group, top row, left column): the taps
        are at rows ``iy0 + ky*dh`` and columns ``ix0 + kx*dw``, wrapping below zero."""
        n, y, x = split_col(col)
        base = sh.linear(0, [(c_in * h * w, n), (h * w, sh.mul(g, u(cpg)))])
        return base, sh.linear(-top, [(s_h, y)]), sh.linear(-left, [(s_w, x)])

    def split_k(kq: int) -> tuple[int, int, int]:
        if kh * kw == 1:
            return kq, u(0), u(0)
        c, r = sh.udiv(kq, u(kh * kw)), sh.umod(kq, u(kh * kw))
        return c, sh.udiv(r, u(kw)), sh.umod(r, u(kw))

    def load_b(state: tuple[int, int, int], kq: int, ks: tuple[int, int, int]) -> int:
        base, iy0, ix0 = state
        c, ky, kx = ks
        iy, ix = sh.add(iy0, sh.linear(0, [(d_h, ky)])), sh.add(ix0, sh.linear(0, [(d_w, kx)]))
        index = sh.add(base, sh.linear(0, [(h * w, c), (w, iy), (1, ix)]))
        if inside_always:
            return sh.load(k.input, index)
        inside = f.op(Op.LogicalAnd, sh.bool, sh.ult(iy, u(h)), sh.ult(ix, u(w)))
        # Padding taps read element 0 and yield 0: selects, not branches, for the SIMD lanes.
        value = sh.load(k.input, f.op(Op.Select, sh.u32, inside, index, u(0)))
        return f.op(Op.Select, sh.f32, inside, value, sh.const("float32", 0.0))

    def out_row(row: int) -> tuple[int, int | None, int]:
        o = sh.add(first_o, row)
        bias = sh.load(k.bias, o) if k.bias is not None else None
        return o, bias, sh.mul(o, u(oh * ow))

    def out_col(col: int) -> tuple[int, int, int, int]:
        n, y, x = split_col(col)
        # col = (n, y, x) row-major, so y * ow + x = col mod (oh * ow)
        return n, y, x, sh.add(sh.mul(n, u(o_total * oh * ow)), sh.umod(col, u(oh * ow)))

    def store(row: tuple[int, int | None, int], col: tuple[int, int, int, int], acc: int) -> None:
        o, bias, o_part = row
        n, y, x, col_part = col
        if bias is not None:
            acc = f.op(Op.FAdd, sh.f32, bias, acc)
        (v, dt), = apply_epilogue(sh, k.epilogue, [(acc, "float32")], {0: n, 1: o, 2: y, 3: x})
        if dt != k.out.dtype:
            v = scalar.cast(sh, dt, k.out.dtype, v)
        sh.store(k.out, sh.add(o_part, col_part), v)

    a = Operand(lambda row: sh.mul(sh.add(first_o, row), u(kk)), load_a)
    blocked_gemm(sh, b, m, ncols, kk, a, Operand(col_base, load_b),
                 Output(out_row, out_col, store), split_k)
    sh.finish()
    return Plan(TX * TY, (-(-ncols // b.bn), -(-m // b.bm), k.groups))
