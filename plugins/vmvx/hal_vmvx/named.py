"""Kernel IR -> vmvx bytecode for the named kernels (matmul, conv, pooling, ...).

Each named kernel becomes one microkernel instruction writing its result for a tile of rows
(the tile axis below), followed by its epilogue, lowered like a generic body over the output's
index space.
"""

from __future__ import annotations


from hal_core.compiler import kernel_ir as K
from hal_core.compiler.kernel_analysis import dense_strides, named_tiling
from hal_vmvx.bytecode import DTYPE_CODE, KernelCode
from hal_vmvx.lowering import (
    MAX_WORKGROUPS,
    KernelBuilder,
    lower_body,
    map_strides,
)

#: Rows (of the tile axis) per workgroup are chosen so that a workgroup has about this much work.
_WORK_PER_WORKGROUP = 1 << 20
_BLAS_DTYPES = ("float32", "float64")


def _operand(kb: KernelBuilder, op: K.KernelOperand, tile_axis: int = -1) -> int:
    return kb.view(op.binding, op.dtype, op.byte_offset, op.shape,
                   dense_strides(op.shape, K.DTYPES[op.dtype]), tile_axis)


def _workgroups(rows: int, work: int) -> int:
    if rows == 0:
        return 1
    return max(1, min(rows, work // _WORK_PER_WORKGROUP, MAX_WORKGROUPS))


def _result_and_epilogue(kb: KernelBuilder, out: K.KernelOperand, acc_dtype: str,
                         epilogue: K.Epilogue | None, tile: int) -> tuple[int, callable]:
    """The value the main op writes, and a function emitting what follows it."""
    out_v = _operand(kb, out, tile)
    if epilogue is None and acc_dtype == out.dtype:
        return out_v, lambda: None
    acc_v = out_v if acc_dtype == out.dtype else kb.scratch(acc_dtype, out.shape, tile)

    def finish() -> None:
        if epilogue is None:
            kb.emit("copy", out_v, [acc_v])
            return
        space = tuple(out.shape)
        ins = []
        for m in epilogue.inputs:
            off, strides = map_strides(m)
            ins.append(kb.view(m.operand.binding, m.operand.dtype, off, space, strides, tile))
        lower_body(kb, epilogue.body, epilogue.yields, ins, [acc_v],
                   lambda d: kb.iota(space, d, tile), space, tile, [(out_v, out.dtype)])
    return acc_v, finish


def _pointwise_blas(k: K.Conv2dKernel) -> bool:
    """A 1x1, stride-1, unpadded float conv: its microkernel is one matmul on the input."""
    acc = k.acc_dtype or k.out.dtype
    return tuple(k.filter.shape[2:]) == (1, 1) and tuple(k.strides) == (1, 1) and \
        not any(k.padding) and acc in _BLAS_DTYPES and k.input.dtype == acc


def lower_named(k: K.Kernel) -> KernelCode:
    kb = KernelBuilder(k.name, K.binding_count(k))
    tiling = named_tiling(k)  # the tile axis: which dim of each operand workgroups split
    rows, work = tiling.rows, tiling.work
    if isinstance(k, K.MatmulKernel):
        acc = k.acc_dtype or k.out.dtype
        a = _operand(kb, k.lhs, tiling.axis("lhs"))
        b = _operand(kb, k.rhs)
        dst, finish = _result_and_epilogue(kb, k.out, acc, k.epilogue, tiling.axis("out"))
        kb.emit("matmul", dst, [a, b], [k.transpose_a, k.transpose_b, DTYPE_CODE[acc]])
        finish()
        if acc in _BLAS_DTYPES and k.lhs.dtype == acc:
            work = 0  # one workgroup: numpy's BLAS threads itself; tiles would oversubscribe
    elif isinstance(k, K.Conv2dKernel):
        acc = k.acc_dtype or k.out.dtype
        srcs = [_operand(kb, k.input), _operand(kb, k.filter)]
        if k.bias is not None:
            srcs.append(_operand(kb, k.bias))
        dst, finish = _result_and_epilogue(kb, k.out, acc, k.epilogue, tiling.axis("out"))
        kb.emit("conv2d", dst, srcs, [*k.strides, *k.padding, *k.dilation, k.groups,
                                      DTYPE_CODE[acc]])
        finish()
    elif isinstance(k, K.Pool2dKernel):
        x = _operand(kb, k.input)
        dst, finish = _result_and_epilogue(kb, k.out, k.out.dtype, k.epilogue,
                                           tiling.axis("out"))
        kb.emit("pool2d", dst, [x], [k.kind == "avg", *k.kernel_size, *k.strides, *k.padding,
                                     k.count_include_pad])
        finish()
    elif isinstance(k, K.ArgReduceKernel):
        x = _operand(kb, k.input, tiling.axis("input"))
        dst = _operand(kb, k.out, tiling.axis("out"))
        kb.emit("argreduce", dst, [x], [k.axis, k.kind == "argmin"])
    elif isinstance(k, K.GatherKernel):
        data = _operand(kb, k.data, tiling.axis("data"))
        idx = _operand(kb, k.indices, tiling.axis("indices"))
        dst, finish = _result_and_epilogue(kb, k.out, k.out.dtype, k.epilogue,
                                           tiling.axis("out"))
        kb.emit("gather", dst, [data, idx], [k.axis])
        finish()
    elif isinstance(k, K.SoftmaxKernel):
        x = _operand(kb, k.input, tiling.axis("input"))
        dst, finish = _result_and_epilogue(kb, k.out, k.out.dtype, k.epilogue,
                                           tiling.axis("out"))
        kb.emit("softmax", dst, [x], [k.axis, k.log])
        finish()
        kb.quiet = True
        work *= 8
    else:  # validate() has rejected anything else already
        raise TypeError(type(k).__name__)
    if isinstance(k, K.Conv2dKernel) and _pointwise_blas(k):
        work = 0  # one BLAS call on the input itself, as a matmul: BLAS threads itself
    if rows == 0 or k.out.num_elements == 0:
        return KernelCode(k.name, kb.binding_count, 0, 0, 1, tuple(kb.values), (), False)
    return kb.finish(rows, 0, _workgroups(rows, work))
