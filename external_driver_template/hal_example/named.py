"""Named kernels the example device runs, rewritten as stages it understands.

* matmul: one GenericKernel with a reduction dim (:func:`matmul_as_generic`);
* softmax / log_softmax: three stages passing row maxima and sums through scratch memory;
* conv2d: zero padding written into scratch memory by two stages, then one reduction stage
  whose affine maps walk the padded input (groups become two iteration dims, so that every
  index stays affine);
* max/avg pooling: the same padding scheme, the average's divisor computed from the output
  coordinates in the stage's final code;
* argmax/argmin: the extreme value along the axis into scratch, then the first index holding
  it (or a NaN).

Gather is declined (its addresses come from data): see :func:`hal_example.target.lower_kernel`.
"""

from __future__ import annotations

import math

from hal_core.compiler import kernel_ir as K
from hal_example.lowering import access, dtype_of, epilogue_code, tiled
from hal_example.program import Access, Body, ProgramKernel, Stage


def matmul_as_generic(k: K.MatmulKernel) -> K.GenericKernel:
    """``out[b.., m, n] = sum_k lhs[b.., m, k] * rhs[b.., k, n]`` over the space (b.., m, n, k)."""
    batch = k.out.shape[:-2]
    nb = len(batch)
    rank = nb + 3
    m, n, kd = nb, nb + 1, nb + 2

    def operand_map(op: K.KernelOperand, rows: int, cols: int) -> K.IndexingMap:
        lead = nb - (len(op.shape) - 2)
        dims: list[int | None] = [None if op.shape[j] == 1 else lead + j
                                  for j in range(len(op.shape) - 2)]
        return K.IndexingMap.of_dims(rank, (*dims, rows, cols))

    lhs = K.MappedOperand(k.lhs, operand_map(k.lhs, *((kd, m) if k.transpose_a else (m, kd))))
    rhs = K.MappedOperand(k.rhs, operand_map(k.rhs, *((n, kd) if k.transpose_b else (kd, n))))
    out = K.MappedOperand(k.out, K.IndexingMap.of_dims(rank, tuple(range(nb + 2))))
    acc = k.acc_dtype or k.out.dtype
    body: list[K.ScalarOp] = []
    args = []
    for i, op in enumerate((k.lhs, k.rhs)):
        if op.dtype == acc:
            args.append(K.Input(i))
        else:
            body.append(K.ScalarOp("cast", (K.Input(i),), acc))
            args.append(K.Result(len(body) - 1))
    body.append(K.ScalarOp("mul", tuple(args), acc))

    finalize = None
    if k.epilogue is not None:
        # The epilogue's index space is out's dims, the space's first nb + 2 dims.
        inputs = tuple(K.MappedOperand(e.operand, K.IndexingMap(rank, tuple(
            K.AffineExpr((*x.coeffs, 0), x.constant) for x in e.map.exprs)))
            for e in k.epilogue.inputs)
        ebody = list(k.epilogue.body)
        y = k.epilogue.yields[0]
        if dtype_of(y, k.epilogue.body, k.epilogue.inputs, acc) != k.out.dtype:
            ebody.append(K.ScalarOp("cast", (y,), k.out.dtype))
            y = K.Result(len(ebody) - 1)
        finalize = K.Epilogue(tuple(ebody), (y,), inputs)
    elif acc != k.out.dtype:
        finalize = K.Epilogue((K.ScalarOp("cast", (K.Acc(0),), k.out.dtype),), (K.Result(0),))
    return K.GenericKernel(k.name, (*batch, k.mnk[0], k.mnk[1], k.mnk[2]),
                           ("parallel",) * (nb + 2) + ("reduction",), (lhs, rhs), (out,),
                           tuple(body), (K.Result(len(body) - 1),), ("sum",), finalize)


def softmax_program(k: K.SoftmaxKernel) -> ProgramKernel:
    """Three stages over the input's space: ``m = max(x)``, ``s = sum(exp(x - m))`` along the
    axis, then ``exp(x - m) / s`` (log: ``x - m - log(s)``) and the epilogue. ``m`` and ``s``
    live in dispatch scratch memory, computed in float32 for float16 inputs."""
    x, out, shape = k.input, k.out, tuple(k.input.shape)
    rank = len(shape)
    axis = k.axis % rank
    acc = "float32" if x.dtype == "float16" else x.dtype
    reduced = tuple(1 if d == axis else n for d, n in enumerate(shape))
    size = K.DTYPES[acc]
    row = [math.prod(reduced[d + 1:]) for d in range(rank)]
    scratch_strides = tuple(0 if d == axis else size * row[d] for d in range(rank))
    m, s = (Access(-1 - j, acc, 0, scratch_strides) for j in range(2))
    xa = access(K.MappedOperand(x, K.IndexingMap.identity(rank)))
    cast = (("cast", acc, ("in", 0)),) if x.dtype != acc else ()
    xv, c = (("val", 0) if cast else ("in", 0)), len(cast)
    max_stage = Stage(shape, (axis,), (xa, m), (1,), Body((0,), cast, (xv,)), ("max",), None)
    sum_code = (*cast, ("sub", acc, xv, ("in", 1)), ("exp", acc, ("val", c)))
    sum_stage = Stage(shape, (axis,), (xa, m, s), (2,), Body((0, 1), sum_code, (("val", c + 1),)),
                      ("sum",), None)
    code = [*cast, ("sub", acc, xv, ("in", 1))]
    if k.log:
        code += [("log", acc, ("in", 2)), ("sub", acc, ("val", c), ("val", c + 1))]
    else:
        code += [("exp", acc, ("val", c)), ("div", acc, ("val", c + 1), ("in", 2))]
    if acc != out.dtype:
        code.append(("cast", out.dtype, ("val", len(code) - 1)))
    result = ("val", len(code) - 1)
    epi_inputs: tuple[K.MappedOperand, ...] = ()
    if k.epilogue is not None:
        epi_inputs = k.epilogue.inputs
        result = epilogue_code(k.epilogue, code, result, 3, out.dtype)
    outa = access(K.MappedOperand(out, K.IndexingMap.identity(rank)))
    operands = (xa, m, s, *(access(e) for e in epi_inputs), outa)
    final_stage = Stage(shape, (), operands, (len(operands) - 1,),
                        Body(tuple(range(len(operands) - 1)), tuple(code), (result,)), (None,),
                        None)
    nbytes = size * math.prod(reduced)
    return tiled(k.name, (max_stage, sum_stage, final_stage), (nbytes, nbytes))




def _affine(rank: int, terms: dict[int, int], constant: int = 0) -> K.AffineExpr:
    return K.AffineExpr(tuple(terms.get(d, 0) for d in range(rank)), constant)


def conv2d_program(k: K.Conv2dKernel) -> ProgramKernel:
    """NCHW conv2d over the space ``(n, g, o, y, x, c, ky, kx)``: group ``g``, output channel
    ``o`` within the group, input channel ``c`` within the group and the window are iteration
    dims, so each operand index is affine. Padding: two stages first zero a padded copy of the
    input in scratch memory and copy the input into its interior."""
    x, w, out = k.input, k.filter, k.out
    n, c_in, h, wd = x.shape
    o_all, cg, kh, kw = w.shape
    g = k.groups
    og = o_all // g
    _, _, oh, ow = out.shape
    (sh, sw), (dh, dw) = k.strides, k.dilation
    top, left, bottom, right = k.padding
    acc = k.acc_dtype or out.dtype
    stages: list[Stage] = []
    scratch: tuple[int, ...] = ()
    size = K.DTYPES[x.dtype]
    src_shape = (n, c_in, h + top + bottom, wd + left + right)
    if any(k.padding):
        row = [math.prod(src_shape[d + 1:]) * size for d in range(4)]
        padded = Access(-1, x.dtype, 0, tuple(row))
        interior = Access(-1, x.dtype, top * row[2] + left * row[3], tuple(row))
        stages.append(Stage(src_shape, (), (padded,), (0,),
                            Body((), (), (("const", 0, x.dtype),)), (None,), None))
        stages.append(Stage(tuple(x.shape), (), (access(K.MappedOperand(
            x, K.IndexingMap.identity(4))), interior), (1,), Body((0,), (), (("in", 0),)),
            (None,), None))
        scratch = (math.prod(src_shape) * size,)
    # The iteration space and the operands' maps over it.
    rank = 8
    space = (n, g, og, oh, ow, cg, kh, kw)
    source_map = K.IndexingMap(rank, (
        _affine(rank, {0: 1}), _affine(rank, {1: cg, 5: 1}),
        _affine(rank, {3: sh, 6: dh}), _affine(rank, {4: sw, 7: dw})))
    channel = _affine(rank, {1: og, 2: 1})   # output channel g * og + o
    out_map = K.IndexingMap(rank, (_affine(rank, {0: 1}), channel, _affine(rank, {3: 1}),
                                   _affine(rank, {4: 1})))
    w_map = K.IndexingMap(rank, (channel, _affine(rank, {5: 1}), _affine(rank, {6: 1}),
                                 _affine(rank, {7: 1})))
    if scratch:
        src = access(K.MappedOperand(K.KernelOperand(0, src_shape, x.dtype), source_map))
        src = Access(-1, src.dtype, src.offset, src.strides)
    else:
        src = access(K.MappedOperand(x, source_map))
    operands = [src, access(K.MappedOperand(w, w_map))]
    code: list[tuple] = []
    args = []
    for i, op in enumerate((x, w)):
        if op.dtype == acc:
            args.append(("in", i))
        else:
            code.append(("cast", acc, ("in", i)))
            args.append(("val", len(code) - 1))
    code.append(("mul", acc, *args))
    body = Body((0, 1), tuple(code), (("val", len(code) - 1),))
    # After the reduction: + bias, the epilogue (its index space is out's dims), cast.
    final: list[tuple] = []
    result: tuple = ("acc", 0)
    final_inputs = []
    if k.bias is not None:
        final_inputs.append(len(operands) + 1)  # after out
        bias = ("in", 0)
        if k.bias.dtype != acc:
            final.append(("cast", acc, bias))
            bias = ("val", 0)
        final.append(("add", acc, result, bias))
        result = ("val", len(final) - 1)

    epi_ops: list[Access] = []
    if k.epilogue is not None:
        # IterIndex over out's dims (n, channel, y, x); the channel is g * og + o.
        final.append(("mul", "int64", ("idx", 1), ("const", og, "int64")))
        final.append(("add", "int64", ("val", len(final) - 1), ("idx", 2)))
        out_dims = (("idx", 0), ("val", len(final) - 1), ("idx", 3), ("idx", 4))

        def out_index(d: int) -> tuple:
            return out_dims[d]

        for e in k.epilogue.inputs:  # re-express maps over out's dims over the iteration dims
            exprs = tuple(_affine(rank, {0: x.coeffs[0], 1: x.coeffs[1] * og, 2: x.coeffs[1],
                                         3: x.coeffs[2], 4: x.coeffs[3]}, x.constant)
                          for x in e.map.exprs)
            epi_ops.append(access(K.MappedOperand(e.operand, K.IndexingMap(rank, exprs))))
        result = epilogue_code(k.epilogue, final, result, len(final_inputs), out.dtype,
                               out_index)
    elif acc != out.dtype:
        final.append(("cast", out.dtype, result))
        result = ("val", len(final) - 1)
    operands.append(access(K.MappedOperand(out, out_map)))
    if k.bias is not None:
        operands.append(access(K.MappedOperand(k.bias, K.IndexingMap(rank, (channel,)))))
    first_epi = len(operands)
    operands += epi_ops
    final_inputs += range(first_epi, len(operands))
    stages.append(Stage(space, (5, 6, 7), tuple(operands), (2,), body, ("sum",),
                        Body(tuple(final_inputs), tuple(final), (result,))))
    # With padding, only n means the same in the padding stages and the convolution.
    return tiled(k.name, tuple(stages), scratch, (0,) if scratch else None)


def _padded_copy(x: K.KernelOperand, pad: tuple[int, int, int, int], extent: tuple[int, int],
                 fill: float | int) -> tuple[list[Stage], tuple[int, ...], tuple[int, ...]]:
    """Stages that fill a scratch copy of NCHW ``x`` of spatial ``extent`` with ``fill`` and
    copy ``x`` in at (top, left); returns (stages, scratch sizes, padded shape)."""
    n, c, h, w = x.shape
    top, left = pad[0], pad[1]
    shape = (n, c, *extent)
    size = K.DTYPES[x.dtype]
    row = tuple(math.prod(shape[d + 1:]) * size for d in range(4))
    whole = Access(-1, x.dtype, 0, row)
    interior = Access(-1, x.dtype, top * row[2] + left * row[3], row)
    stages = [Stage(shape, (), (whole,), (0,), Body((), (), (("const", fill, x.dtype),)),
                    (None,), None),
              Stage(tuple(x.shape), (), (access(K.MappedOperand(x, K.IndexingMap.identity(4))),
                                         interior), (1,), Body((0,), (), (("in", 0),)),
                    (None,), None)]
    return stages, (math.prod(shape) * size,), shape


def pool2d_program(k: K.Pool2dKernel) -> ProgramKernel:
    """Max or average pooling over the space ``(n, c, y, x, ky, kx)``. Padding (and ceil-mode
    windows running past it) come from a scratch copy filled with the lowest value (max) or 0
    (avg); the average divides by a count computed from the output coordinates."""
    x, out = k.input, k.out
    n, c, h, w = x.shape
    oh, ow = out.shape[2:]
    (kh, kw), (sh, sw) = k.kernel_size, k.strides
    top, left, bottom, right = k.padding
    need = ((oh - 1) * sh + kh, (ow - 1) * sw + kw)
    extent = (max(need[0], top + h), max(need[1], left + w))
    stages: list[Stage] = []
    scratch: tuple[int, ...] = ()
    rank = 6
    window = K.IndexingMap(rank, (_affine(rank, {0: 1}), _affine(rank, {1: 1}),
                                  _affine(rank, {2: sh, 4: 1}), _affine(rank, {3: sw, 5: 1})))
    source = access(K.MappedOperand(x, window))
    if extent != (h, w) or top or left:
        if k.kind == "max":
            fill = -math.inf if x.dtype in K.FLOAT_DTYPES else _int_min(x.dtype)
        else:
            fill = 0
        stages, scratch, shape = _padded_copy(x, k.padding, extent, fill)
        padded = access(K.MappedOperand(K.KernelOperand(0, shape, x.dtype), window))
        source = Access(-1, x.dtype, padded.offset, padded.strides)
    out_map = K.IndexingMap.of_dims(rank, (0, 1, 2, 3))
    operands = [source, access(K.MappedOperand(out, out_map))]
    final: list[tuple] = []
    if k.kind == "max":
        acc = x.dtype
        body = Body((0,), (), (("in", 0),))
        combiner = "max"
        result: tuple = ("acc", 0)
    else:
        acc = x.dtype if x.dtype in ("float32", "float64") else (
            "float32" if x.dtype == "float16" else "float64")
        body = Body((0,), (("cast", acc, ("in", 0)),) if acc != x.dtype else (),
                    (("val", 0) if acc != x.dtype else ("in", 0),))
        combiner = "sum"
        counts = []
        for dim, stride, size, ksize, lo_pad, hi_pad in ((2, sh, h, kh, top, bottom),
                                                         (3, sw, w, kw, left, right)):
            final.append(("mul", "int64", ("idx", dim), ("const", stride, "int64")))
            final.append(("sub", "int64", ("val", len(final) - 1), ("const", lo_pad, "int64")))
            start = ("val", len(final) - 1)
            final.append(("add", "int64", start, ("const", ksize, "int64")))
            final.append(("min", "int64", ("val", len(final) - 1),
                          ("const", size + hi_pad, "int64")))
            end = ("val", len(final) - 1)
            if not k.count_include_pad:
                final.append(("min", "int64", end, ("const", size, "int64")))
                end = ("val", len(final) - 1)
                final.append(("max", "int64", start, ("const", 0, "int64")))
                start = ("val", len(final) - 1)
            final.append(("sub", "int64", end, start))
            counts.append(("val", len(final) - 1))
        final.append(("mul", "int64", *counts))
        final.append(("cast", acc, ("val", len(final) - 1)))
        final.append(("div", acc, ("acc", 0), ("val", len(final) - 1)))
        result = ("val", len(final) - 1)
    epi_inputs: tuple[K.MappedOperand, ...] = ()
    if k.epilogue is not None:
        epi_inputs = tuple(K.MappedOperand(e.operand, K.IndexingMap(rank, tuple(
            K.AffineExpr((*a.coeffs, 0, 0), a.constant) for a in e.map.exprs)))
            for e in k.epilogue.inputs)
        result = epilogue_code(K.Epilogue(k.epilogue.body, k.epilogue.yields, epi_inputs),
                               final, result, 0, out.dtype)
    elif acc != out.dtype:
        final.append(("cast", out.dtype, result))
        result = ("val", len(final) - 1)
    operands += [access(e) for e in epi_inputs]
    stages.append(Stage((n, c, oh, ow, kh, kw), (4, 5), tuple(operands), (1,), body, (combiner,),
                        Body(tuple(range(2, len(operands))), tuple(final), (result,))))
    return tiled(k.name, tuple(stages), scratch, (0, 1) if scratch else None)


def _int_min(dtype: str) -> int:
    bits = 8 * K.DTYPES[dtype]
    return 0 if dtype.startswith("u") else -(1 << (bits - 1))


def argreduce_program(k: K.ArgReduceKernel) -> ProgramKernel:
    """Two stages over the input's space: the max (min) along the axis into scratch memory,
    then the smallest index holding it, or holding a NaN (NaN wins, as in numpy)."""
    x, out, shape = k.input, k.out, tuple(k.input.shape)
    rank = len(shape)
    axis = k.axis % rank
    reduced = tuple(1 if d == axis else n for d, n in enumerate(shape))
    size = K.DTYPES[x.dtype]
    row = [math.prod(reduced[d + 1:]) for d in range(rank)]
    best = Access(-1, x.dtype, 0, tuple(0 if d == axis else size * row[d] for d in range(rank)))
    xa = access(K.MappedOperand(x, K.IndexingMap.identity(rank)))
    combiner = "max" if k.kind == "argmax" else "min"
    first = Stage(shape, (axis,), (xa, best), (1,), Body((0,), (), (("in", 0),)), (combiner,),
                  None)
    code: list[tuple] = [("cmp_eq", "bool", ("in", 0), ("in", 1))]
    if x.dtype in K.FLOAT_DTYPES:
        code.append(("cmp_ne", "bool", ("in", 0), ("in", 0)))
        code.append(("or", "bool", ("val", 0), ("val", 1)))
    code.append(("select", "int64", ("val", len(code) - 1), ("idx", axis),
                 ("const", shape[axis], "int64")))
    kept = len(out.shape) == rank
    dims = tuple(None if d == axis else d for d in range(rank) if kept or d != axis)
    outa = access(K.MappedOperand(out, K.IndexingMap.of_dims(rank, dims)))
    final = None
    if out.dtype != "int64":
        final = Body((), (("cast", out.dtype, ("acc", 0)),), (("val", 0),))
    second = Stage(shape, (axis,), (xa, best, outa), (2,), Body((0, 1), tuple(code),
                   (("val", len(code) - 1),)), ("min",), final)
    nbytes = size * math.prod(reduced)
    return tiled(k.name, (first, second), (nbytes,),
                 tuple(d for d in range(rank) if d != axis))
