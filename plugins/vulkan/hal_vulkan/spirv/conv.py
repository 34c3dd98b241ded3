"""conv2d as an implicit GEMM on the tiled path of :mod:`hal_vulkan.spirv.matmul`.

Per group g (the grid's z): ``out[o, (n, y, x)] = sum_k W[o, k] * X[k, (n, y, x)]`` with
``k = (c, ky, kx)``. W is the filter as stored (``(O, C/groups * KH * KW)`` row-major); the X
"matrix" is never built: each element is read from the input at ``(y*sh + ky*dh - top,
x*sw + kx*dw - left)``, zero outside it (im2col on the fly, into shared memory).
"""

from __future__ import annotations

from hal_core.compiler.kernel_ir import Conv2dKernel
from hal_vulkan.spirv import scalar
from hal_vulkan.spirv.builder import BuiltIn, Op
from hal_vulkan.spirv.generic import Plan, apply_epilogue
from hal_vulkan.spirv.matmul import Tiling, gemm_fits, tiled_gemm
from hal_vulkan.spirv.shader import Limit, Shader, ShaderFactory


def _gemm_shape(k: Conv2dKernel) -> tuple[int, int, int]:
    n, o_total, oh, ow = k.out.shape
    _, cpg, kh, kw = k.filter.shape
    return o_total // k.groups, n * oh * ow, cpg * kh * kw


def tiled_conv_fits(k: Conv2dKernel, limit: Limit) -> Tiling | None:
    dtypes = {k.input.dtype, k.filter.dtype, k.out.dtype, k.acc_dtype or k.out.dtype}
    if k.bias is not None:
        dtypes.add(k.bias.dtype)
    if dtypes != {"float32"}:
        return None
    m, n, kk = _gemm_shape(k)
    return gemm_fits(m, n, kk, k.groups, limit)


def lower_tiled_conv(k: Conv2dKernel, factory: ShaderFactory, limit: Limit) -> Plan:
    t = tiled_conv_fits(k, limit)
    m, ncols, kk = _gemm_shape(k)
    _, c_in, h, w = k.input.shape
    _, o_total, oh, ow = k.out.shape
    _, cpg, kh, kw = k.filter.shape
    (s_h, s_w), (d_h, d_w), (top, left) = k.strides, k.dilation, k.padding[:2]
    sh: Shader = factory((t.threads, 1, 1), fast_math=True)
    f, u = sh.f, sh.u
    g = sh.component(sh.builtin(BuiltIn.WorkgroupId), 2)
    first_o = sh.mul(g, u(m))
    first_c = sh.mul(g, u(cpg))

    def load_a(row: int, kcol: int) -> int:
        return sh.load(k.filter, sh.linear(0, [(kk, sh.add(first_o, row)), (1, kcol)]))

    def split_col(col: int) -> tuple[int, int, int]:
        x = sh.umod(col, u(ow))
        rest = sh.udiv(col, u(ow))
        return sh.udiv(rest, u(oh)), sh.umod(rest, u(oh)), x

    def load_b(krow: int, col: int) -> int:
        c, r = sh.udiv(krow, u(kh * kw)), sh.umod(krow, u(kh * kw))
        ky, kx = sh.udiv(r, u(kw)), sh.umod(r, u(kw))
        n, y, x = split_col(col)
        iy = sh.linear(-top, [(s_h, y), (d_h, ky)])
        ix = sh.linear(-left, [(s_w, x), (d_w, kx)])
        inside = f.op(Op.LogicalAnd, sh.bool, sh.ult(iy, u(h)), sh.ult(ix, u(w)))
        value = sh.var(sh.f32, sh.const("float32", 0.0))
        with sh.if_(inside):
            index = sh.linear(0, [(c_in * h * w, n), (h * w, sh.add(first_c, c)), (w, iy),
                                  (1, ix)])
            f.store(value, sh.load(k.input, index))
        return f.load(sh.f32, value)

    def store(row: int, col: int, acc: int) -> None:
        o = sh.add(first_o, row)
        n, y, x = split_col(col)
        if k.bias is not None:
            acc = f.op(Op.FAdd, sh.f32, sh.load(k.bias, o), acc)
        (v, dt), = apply_epilogue(sh, k.epilogue, [(acc, "float32")], {0: n, 1: o, 2: y, 3: x})
        if dt != k.out.dtype:
            v = scalar.cast(sh, dt, k.out.dtype, v)
        sh.store(k.out, sh.linear(0, [(o_total * oh * ow, n), (oh * ow, o), (ow, y), (1, x)]), v)

    tiled_gemm(sh, t, m, ncols, kk, load_a, load_b, store)
    sh.finish()
    return Plan(t.threads, (-(-ncols // t.bn), -(-m // t.bm), k.groups), t.shared_bytes)
