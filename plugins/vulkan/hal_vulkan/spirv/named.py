"""Named kernels -> SPIR-V: one invocation per output element (per row for softmax).

Large float32 matmuls take a shared-memory tiled path: :mod:`hal_vulkan.spirv.matmul_vec4` for
aligned row-major operands, :mod:`hal_vulkan.spirv.matmul` for the rest, and float32 conv2d
the implicit GEMM of :mod:`hal_vulkan.spirv.conv`;
everything else here is a direct loop nest, correct for every dtype and shape.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from hal_core.compiler.kernel_ir import (
    FLOAT_DTYPES, ArgReduceKernel, Conv2dKernel, GatherKernel, Kernel, KernelOperand,
    MatmulKernel, Pool2dKernel, SoftmaxKernel,
)
from hal_vulkan.errors import UnsupportedKernelError
from hal_vulkan.spirv import scalar, scalar_f64
from hal_vulkan.spirv.builder import Op
from hal_vulkan.spirv.generic import (
    Coords, Plan, apply_epilogue, decompose, launch, tree_combine, tree_size,
)
from hal_vulkan.spirv.shader import Limit, Shader, ShaderFactory, split_grid

EXP, LOG = scalar.EXP, scalar.LOG


def flat(sh: Shader, shape: tuple[int, ...], idx: list[int]) -> int:
    """Row-major element index of ``shape`` at per-dim uint32 ids ``idx``."""
    return sh.linear(0, [(math.prod(shape[j + 1:]), v) for j, v in enumerate(idx)])


def _per_element(limit: Limit, factory: ShaderFactory, total: int,
                 rank_shape: tuple[int, ...], body: Callable[[Shader, Coords], None]) -> Plan:
    """Run ``body(sh, coords)`` once per element of ``rank_shape`` (``total`` elements)."""
    local = min(64, limit("maxComputeWorkGroupInvocations"), limit("maxComputeWorkGroupSize")[0])
    plan = launch(limit, total, local)
    sh: Shader = factory((local, 1, 1))
    gid = sh.add(sh.mul(sh.workgroup_linear_id(plan.grid), sh.u(local)), sh.local_id())
    with sh.if_(sh.ult(gid, sh.u(total))):
        body(sh, decompose(sh, gid, list(range(len(rank_shape))), rank_shape) if rank_shape
             else {})
    sh.finish()
    return plan


def _store(sh: Shader, k, value: int, dtype: str, coords: Coords) -> None:
    (v, dt), = apply_epilogue(sh, getattr(k, "epilogue", None), [(value, dtype)], coords)
    if dt != k.out.dtype:
        v = scalar.cast(sh, dt, k.out.dtype, v)
    sh.store(k.out, flat(sh, k.out.shape, [coords[d] for d in range(len(k.out.shape))]), v)


def lower_named(k: Kernel, factory: ShaderFactory, limit: Limit, cpu: bool = False) -> Plan:
    """``cpu``: the target device is a CPU (lavapipe): float32 matmul and conv2d take the
    barrier-free register-blocked path of :mod:`hal_vulkan.spirv.cpu_gemm`, which llvmpipe
    compiles in a fraction of the time of the shared-memory tiles."""
    if isinstance(k, MatmulKernel):
        if cpu:
            from hal_vulkan.spirv.cpu_gemm import blocked_matmul_fits, lower_blocked_matmul
            if blocked_matmul_fits(k, limit):
                return lower_blocked_matmul(k, factory, limit)
            return _matmul(k, factory, limit)
        from hal_vulkan.spirv.matmul import lower_tiled_matmul, tiled_matmul_fits
        from hal_vulkan.spirv.matmul_vec4 import lower_vec4_matmul, vec4_matmul_fits
        if vec4_matmul_fits(k, limit):
            return lower_vec4_matmul(k, factory, limit)
        if tiled_matmul_fits(k, limit):
            return lower_tiled_matmul(k, factory, limit)
        return _matmul(k, factory, limit)
    if isinstance(k, Conv2dKernel):
        if cpu:
            from hal_vulkan.spirv.cpu_gemm import blocked_conv_fits, lower_blocked_conv
            if blocked_conv_fits(k, limit):
                return lower_blocked_conv(k, factory, limit)
        else:
            from hal_vulkan.spirv.conv import lower_tiled_conv, tiled_conv_fits
            if tiled_conv_fits(k, limit):
                return lower_tiled_conv(k, factory, limit)
    lowering = {Conv2dKernel: _conv2d, Pool2dKernel: _pool2d, ArgReduceKernel: _argreduce,
                GatherKernel: _gather, SoftmaxKernel: _softmax}.get(type(k))
    if lowering is None:
        raise UnsupportedKernelError(f"no SPIR-V lowering for {type(k).__name__}")
    return lowering(k, factory, limit)


def _matmul(k: MatmulKernel, factory: ShaderFactory, limit: Limit) -> Plan:
    m, n, kk = k.mnk
    acc = k.acc_dtype or k.out.dtype
    ro = len(k.out.shape)

    def operand_index(sh, op: KernelOperand, coords, row, col, transpose):
        r = len(op.shape)
        idx = [sh.u(0) if op.shape[j] == 1 else coords[j + ro - r] for j in range(r - 2)]
        idx += [col, row] if transpose else [row, col]
        return flat(sh, op.shape, idx)

    def body(sh: Shader, c: Coords) -> None:
        t = sh.reg(acc)
        total = sh.var(t, sh.const(acc, 0))
        with sh.loop(sh.u(0), sh.u(kk)) as i:
            a = sh.load(k.lhs, operand_index(sh, k.lhs, c, c[ro - 2], i, k.transpose_a))
            b = sh.load(k.rhs, operand_index(sh, k.rhs, c, i, c[ro - 1], k.transpose_b))
            prod = scalar.binary(sh, "mul", acc, scalar.cast(sh, k.lhs.dtype, acc, a),
                                 scalar.cast(sh, k.rhs.dtype, acc, b))
            sh.f.store(total, scalar.binary(sh, "add", acc, sh.f.load(t, total), prod))
        _store(sh, k, sh.f.load(t, total), acc, c)

    return _per_element(limit, factory, k.out.num_elements, k.out.shape, body)


def _conv2d(k: Conv2dKernel, factory: ShaderFactory, limit: Limit) -> Plan:
    acc = k.acc_dtype or k.out.dtype
    h, w = k.input.shape[2:]
    o_total, cpg, kh, kw = k.filter.shape
    opg = o_total // k.groups
    (s_h, s_w), (d_h, d_w), (top, left) = k.strides, k.dilation, k.padding[:2]

    def body(sh: Shader, c: Coords) -> None:
        t = sh.reg(acc)
        n, o, y, x = c[0], c[1], c[2], c[3]
        first_c = sh.mul(sh.udiv(o, sh.u(opg)), sh.u(cpg))
        total = sh.var(t, sh.const(acc, 0))
        with sh.loop(sh.u(0), sh.u(cpg)) as ci, sh.loop(sh.u(0), sh.u(kh)) as ky, \
                sh.loop(sh.u(0), sh.u(kw)) as kx:
            iy = sh.linear(-top, [(s_h, y), (d_h, ky)])
            ix = sh.linear(-left, [(s_w, x), (d_w, kx)])
            # Negative positions wrap to huge unsigned values: one compare per axis.
            inside = sh.f.op(Op.LogicalAnd, sh.bool, sh.ult(iy, sh.u(h)), sh.ult(ix, sh.u(w)))
            with sh.if_(inside):
                a = sh.load(k.input, flat(sh, k.input.shape, [n, sh.add(first_c, ci), iy, ix]))
                b = sh.load(k.filter, flat(sh, k.filter.shape, [o, ci, ky, kx]))
                prod = scalar.binary(sh, "mul", acc, scalar.cast(sh, k.input.dtype, acc, a),
                                     scalar.cast(sh, k.filter.dtype, acc, b))
                sh.f.store(total, scalar.binary(sh, "add", acc, sh.f.load(t, total), prod))
        v = sh.f.load(t, total)
        if k.bias is not None:
            bias = scalar.cast(sh, k.bias.dtype, acc, sh.load(k.bias, o))
            v = scalar.binary(sh, "add", acc, bias, v)
        _store(sh, k, v, acc, c)

    return _per_element(limit, factory, k.out.num_elements, k.out.shape, body)


def _pool2d(k: Pool2dKernel, factory: ShaderFactory, limit: Limit) -> Plan:
    dt = k.input.dtype
    h, w = k.input.shape[2:]
    (kh, kw), (s_h, s_w) = k.kernel_size, k.strides
    top, left, bottom, right = k.padding
    avg = k.kind == "avg"
    # Average: float16 sums in f32, integers in f64 (then truncated), as the reference does.
    acc = ("float64" if dt not in FLOAT_DTYPES else "float32" if dt == "float16" else dt) \
        if avg else dt

    def body(sh: Shader, c: Coords) -> None:
        t = sh.reg(acc)
        n, ch, y, x = c[0], c[1], c[2], c[3]
        total = sh.var(t, scalar.identity(sh, "sum" if avg else "max", acc))
        count = sh.var(sh.u32, sh.u(0))
        with sh.loop(sh.u(0), sh.u(kh)) as ky, sh.loop(sh.u(0), sh.u(kw)) as kx:
            iy = sh.linear(-top, [(s_h, y), (1, ky)])
            ix = sh.linear(-left, [(s_w, x), (1, kx)])
            inside = sh.f.op(Op.LogicalAnd, sh.bool, sh.ult(iy, sh.u(h)), sh.ult(ix, sh.u(w)))
            if avg and k.count_include_pad:
                py, px = sh.add(iy, sh.u(top)), sh.add(ix, sh.u(left))
                counted = sh.f.op(Op.LogicalAnd, sh.bool, sh.ult(py, sh.u(h + top + bottom)),
                                  sh.ult(px, sh.u(w + left + right)))
                with sh.if_(counted):
                    sh.f.store(count, sh.add(sh.f.load(sh.u32, count), sh.u(1)))
            with sh.if_(inside):
                v = scalar.cast(sh, dt, acc, sh.load(k.input, flat(sh, k.input.shape,
                                                                    [n, ch, iy, ix])))
                cur = sh.f.load(t, total)
                sh.f.store(total, scalar.combine(sh, "sum" if avg else "max", acc, cur, v))
                if avg and not k.count_include_pad:
                    sh.f.store(count, sh.add(sh.f.load(sh.u32, count), sh.u(1)))
        v = sh.f.load(t, total)
        if avg:
            cnt = sh.f.load(sh.u32, count)
            cnt = sh.f.op(Op.Select, sh.u32, sh.f.op(Op.IEqual, sh.bool, cnt, sh.u(0)),
                          sh.u(1), cnt)
            v = scalar.binary(sh, "div", acc, v, scalar.cast(sh, "uint32", acc, cnt))
            v = scalar.cast(sh, acc, dt, v)
        _store(sh, k, v, dt, c)

    return _per_element(limit, factory, k.out.num_elements, k.out.shape, body)


def _argreduce(k: ArgReduceKernel, factory: ShaderFactory, limit: Limit) -> Plan:
    shape, dt, ax = k.input.shape, k.input.dtype, k.axis
    outer = tuple(s for d, s in enumerate(shape) if d != ax)
    is_max = k.kind == "argmax"

    def body(sh: Shader, c: Coords) -> None:
        t = sh.reg(dt)
        idx = [c[j if j < ax else j - 1] if j != ax else None for j in range(len(shape))]

        def at(i: int) -> int:
            return sh.load(k.input, flat(sh, shape, [i if v is None else v for v in idx]))

        best = sh.var(t, at(sh.u(0)))
        best_i = sh.var(sh.u32, sh.u(0))
        with sh.loop(sh.u(1), sh.u(shape[ax])) as i:
            v, b = at(i), sh.f.load(t, best)
            if dt == "bool":
                v, b = (sh.f.op(Op.Select, sh.u32, z, sh.u(1), sh.u(0)) for z in (v, b))
            better = scalar.compare(sh, "cmp_gt" if is_max else "cmp_lt",
                                    "uint32" if dt == "bool" else dt, v, b)
            if dt in FLOAT_DTYPES:  # the first NaN wins and stays
                b_nan = sh.f.op(Op.IsNan, sh.bool, b)
                better = sh.f.op(Op.LogicalAnd, sh.bool, sh.f.op(Op.LogicalNot, sh.bool, b_nan),
                                 sh.f.op(Op.LogicalOr, sh.bool, better,
                                         sh.f.op(Op.IsNan, sh.bool, v)))
            with sh.if_(better):
                sh.f.store(best, at(i))
                sh.f.store(best_i, i)
        out_index = flat(sh, outer, [c[j] for j in range(len(outer))])
        if k.out.dtype in ("int64", "uint64"):  # no 64-bit arithmetic needed for an index
            sh.store_index64(k.out, out_index, sh.f.load(sh.u32, best_i))
        else:
            sh.store(k.out, out_index, scalar.cast(sh, "uint32", k.out.dtype,
                                                   sh.f.load(sh.u32, best_i)))

    return _per_element(limit, factory, math.prod(outer), outer, body)


def _gather(k: GatherKernel, factory: ShaderFactory, limit: Limit) -> Plan:
    ax, n = k.axis, k.data.shape[k.axis]
    ri = len(k.indices.shape)
    it = k.indices.dtype

    def body(sh: Shader, c: Coords) -> None:
        at = flat(sh, k.indices.shape, [c[ax + j] for j in range(ri)])
        if it in ("int64", "uint64"):
            v = _clamp_index_words(sh, *sh.load_words64(k.indices, at), n, it == "int64")
        elif it == "uint32":
            v = sh.f.ext(sh.u32, scalar.UMIN, sh.load(k.indices, at), sh.u(n - 1))
        else:
            v = _clamp_index(sh, "int32", sh.load(k.indices, at), n)
        rest = [c[d] for d in range(ax)] + [v] + [c[d] for d in range(ax + ri, len(k.out.shape))]
        src = flat(sh, k.data.shape, rest)
        if k.epilogue is None and k.data.dtype == k.out.dtype:  # int64 data needs no Int64
            sh.copy_element(k.data, src, k.out, flat(sh, k.out.shape, [
                c[d] for d in range(len(k.out.shape))]))
        else:
            _store(sh, k, sh.load(k.data, src), k.data.dtype, c)

    return _per_element(limit, factory, k.out.num_elements, k.out.shape, body)


def _clamp_index_words(sh: Shader, lo: int, hi: int, n: int, signed: bool) -> int:
    """numpy-style index (negatives from the end), clamped to [0, n), of a 64-bit integer given
    as two words, without 64-bit arithmetic: only values with hi in {0, -1} are in range."""
    f, b = sh.f, sh.bool
    lo_neg = f.op(Op.SLessThan, b, lo, sh.u(0))
    fits_pos = f.op(Op.LogicalAnd, b, f.op(Op.IEqual, b, hi, sh.u(0)),
                    f.op(Op.LogicalNot, b, lo_neg))
    if not signed:
        return f.op(Op.Select, sh.u32, fits_pos, f.ext(sh.u32, scalar.UMIN, lo, sh.u(n - 1)),
                    sh.u(n - 1))
    fits_neg = f.op(Op.LogicalAnd, b, f.op(Op.IEqual, b, hi, sh.u(0xFFFFFFFF)), lo_neg)
    small = _clamp_index(sh, "int32", lo, n)
    hi_neg = f.op(Op.SLessThan, b, hi, sh.u(0))
    far = f.op(Op.Select, sh.u32, hi_neg, sh.u(0), sh.u(n - 1))
    return f.op(Op.Select, sh.u32, f.op(Op.LogicalOr, b, fits_pos, fits_neg), small, far)


def _clamp_index(sh: Shader, dt: str, v: int, n: int) -> int:
    """A signed 32-bit (or narrower, canonical) index, negatives from the end, into [0, n)."""
    t = sh.u32
    neg = sh.f.op(Op.SLessThan, sh.bool, v, sh.const(dt, 0))
    v = sh.f.op(Op.Select, t, neg, sh.f.op(Op.IAdd, t, v, sh.const(dt, n)), v)
    v = sh.f.ext(t, scalar.SMAX, v, sh.const(dt, 0))
    return sh.f.ext(t, scalar.SMIN, v, sh.const(dt, n - 1))


def _exp(sh: Shader, acc: str, v: int) -> int:
    return scalar_f64.exp64(sh, v) if acc == "float64" else sh.f.ext(sh.f32, EXP, v)


def _log(sh: Shader, acc: str, v: int) -> int:
    return scalar_f64.log64(sh, v) if acc == "float64" else sh.f.ext(sh.f32, LOG, v)


def _softmax_rows(k: SoftmaxKernel, factory: ShaderFactory, limit: Limit,
                  rows: tuple[int, ...]) -> Plan:
    """Softmax over the contiguous last axis: a workgroup per row, invocations striding the row
    (coalesced), max and sum combined by shared-memory trees."""
    n, dt = k.input.shape[-1], k.input.dtype
    acc = "float64" if dt == "float64" else "float32"
    width = 8 if acc == "float64" else 4
    local = tree_size(limit, width)
    total_rows = math.prod(rows)
    plan = Plan(local, split_grid(total_rows, limit("maxComputeWorkGroupCount")),
                width * local)
    sh: Shader = factory((local, 1, 1))
    f, t, u = sh.f, sh.reg(acc), sh.u
    row = sh.workgroup_linear_id(plan.grid)
    lid = sh.local_id()
    in_range = sh.ult(row, u(total_rows))
    # Rows past the end (a grid folded over x and y) clamp to the last row and store nothing:
    # every invocation must reach every barrier.
    row = f.ext(sh.u32, scalar.UMIN, row, u(total_rows - 1))
    base = sh.mul(row, u(n))
    shared = sh.shared_array(t, local)

    def x(i: int) -> int:
        return sh.load(k.input, sh.add(base, i))

    part = sh.var(t, sh.const(acc, float("-inf")))
    with sh.loop(lid, u(n), u(local)) as i:
        f.store(part, scalar.fmax(sh, t, f.load(t, part), x(i), True))
    tree_combine(sh, [shared], [f.load(t, part)], lid, local, [acc], ("max",))
    m = f.load(t, sh.shared_ptr(shared, t, u(0)))
    sh.barrier()  # everyone has read the max before the sum tree reuses the array
    f.store(part, sh.const(acc, 0.0))
    with sh.loop(lid, u(n), u(local)) as i:
        e = _exp(sh, acc, f.op(Op.FSub, t, x(i), m))
        f.store(part, f.op(Op.FAdd, t, f.load(t, part), e))
    tree_combine(sh, [shared], [f.load(t, part)], lid, local, [acc], ("sum",))
    s = f.load(t, sh.shared_ptr(shared, t, u(0)))
    log_s = _log(sh, acc, s)
    outer = decompose(sh, row, list(range(len(rows))), rows)
    with sh.if_(in_range), sh.loop(lid, u(n), u(local)) as i:
        shifted = f.op(Op.FSub, t, x(i), m)
        v = (f.op(Op.FSub, t, shifted, log_s) if k.log
             else f.op(Op.FDiv, t, _exp(sh, acc, shifted), s))
        _store(sh, k, scalar.normalize(sh, dt, v), dt, outer | {len(rows): i})
    sh.finish()
    return plan


def _softmax(k: SoftmaxKernel, factory: ShaderFactory, limit: Limit) -> Plan:
    shape, dt, ax = k.input.shape, k.input.dtype, k.axis
    acc = "float64" if dt == "float64" else "float32"
    rows = tuple(s for d, s in enumerate(shape) if d != ax)
    if 0 in shape:
        rows = (0,)
    if ax == len(shape) - 1 and shape[ax] >= 128 and math.prod(rows) > 0:
        return _softmax_rows(k, factory, limit, rows)

    def body(sh: Shader, c: Coords) -> None:
        f, t = sh.f, sh.reg(acc)
        base = [c[j if j < ax else j - 1] if j != ax else None for j in range(len(shape))]

        def index(i: int) -> int:
            return flat(sh, shape, [i if v is None else v for v in base])

        mx = sh.var(t, sh.const(acc, float("-inf")))
        with sh.loop(sh.u(0), sh.u(shape[ax])) as i:
            f.store(mx, scalar.fmax(sh, t, f.load(t, mx), sh.load(k.input, index(i)), True))
        m = f.load(t, mx)
        total = sh.var(t, sh.const(acc, 0.0))
        with sh.loop(sh.u(0), sh.u(shape[ax])) as i:
            e = _exp(sh, acc, f.op(Op.FSub, t, sh.load(k.input, index(i)), m))
            f.store(total, f.op(Op.FAdd, t, f.load(t, total), e))
        s = f.load(t, total)
        log_s = _log(sh, acc, s)
        with sh.loop(sh.u(0), sh.u(shape[ax])) as i:
            shifted = f.op(Op.FSub, t, sh.load(k.input, index(i)), m)
            v = (f.op(Op.FSub, t, shifted, log_s) if k.log
                 else f.op(Op.FDiv, t, _exp(sh, acc, shifted), s))
            v = scalar.normalize(sh, dt, v)
            point = {d: (i if d == ax else c[d if d < ax else d - 1]) for d in range(len(shape))}
            _store(sh, k, v, dt, point)

    return _per_element(limit, factory, math.prod(rows), rows, body)
