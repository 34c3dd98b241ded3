"""Consistency checks for kernel IR (see :mod:`hal_core.compiler.kernel_ir`).

:func:`validate` is what a target backend may rely on: map arities match, every element an
indexing map can reach over the iteration space lies inside its operand, scalar bodies are
well-typed SSA, and named kernels have consistent shapes.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

from hal_core.compiler import kernel_ir as K
from hal_core.errors import CompileError


def _fail(kernel: object, what: str) -> CompileError:
    name = getattr(kernel, "name", "?")
    return CompileError(f"kernel {name!r} ({type(kernel).__name__}): {what}")


def _check_operand(kernel: object, op: K.KernelOperand, role: str) -> None:
    if not isinstance(op, K.KernelOperand):
        raise _fail(kernel, f"{role}: expected a KernelOperand, found {type(op).__name__}")
    if op.dtype not in K.DTYPES:
        raise _fail(kernel, f"{role}: unknown dtype {op.dtype!r}; expected one of "
                            f"{', '.join(K.DTYPES)}")
    if op.binding < 0 or op.byte_offset < 0 or any(d < 0 for d in op.shape):
        raise _fail(kernel, f"{role}: binding, byte_offset and dims must be >= 0, found "
                            f"binding={op.binding} offset={op.byte_offset} shape={op.shape}")
    if op.byte_offset % K.DTYPES[op.dtype]:
        raise _fail(kernel, f"{role}: byte_offset {op.byte_offset} is not a multiple of the "
                            f"{op.dtype} element size")


def _check_map(kernel: object, m: K.MappedOperand, space: Sequence[int], role: str) -> None:
    _check_operand(kernel, m.operand, role)
    imap = m.map
    if imap.num_dims != len(space):
        raise _fail(kernel, f"{role}: indexing map has {imap.num_dims} dims, the iteration "
                            f"space has {len(space)}")
    if len(imap.exprs) != len(m.operand.shape):
        raise _fail(kernel, f"{role}: indexing map has {len(imap.exprs)} results, operand has "
                            f"rank {len(m.operand.shape)}")
    if math.prod(space) == 0:
        return  # no point is ever visited
    for j, (e, size) in enumerate(zip(imap.exprs, m.operand.shape)):
        if len(e.coeffs) != len(space):
            raise _fail(kernel, f"{role}: expr {j} has {len(e.coeffs)} coefficients, expected "
                                f"{len(space)}")
        lo, hi = e.bounds(tuple(space))
        if lo < 0 or hi >= size:
            raise _fail(kernel, f"{role}: dim {j} is indexed in [{lo}, {hi}] but has size "
                                f"{size}; fix the map's coefficients or constant")


def _value_dtype(kernel: object, ref: object, ins: Sequence[K.MappedOperand], done: list[str],
                 ndims: int, accs: Sequence[str] | None) -> str:
    if isinstance(ref, K.Input):
        if not 0 <= ref.index < len(ins):
            raise _fail(kernel, f"Input({ref.index}) but there are {len(ins)} inputs")
        return ins[ref.index].operand.dtype
    if isinstance(ref, K.Result):
        if not 0 <= ref.index < len(done):
            raise _fail(kernel, f"Result({ref.index}) used before it is defined")
        return done[ref.index]
    if isinstance(ref, K.Const):
        if ref.dtype not in K.DTYPES:
            raise _fail(kernel, f"Const has unknown dtype {ref.dtype!r}")
        _check_const(kernel, ref)
        return ref.dtype
    if isinstance(ref, K.IterIndex):
        if not 0 <= ref.dim < ndims:
            raise _fail(kernel, f"IterIndex({ref.dim}) but there are {ndims} dims")
        return "int64"
    if isinstance(ref, K.Acc):
        if accs is None or not 0 <= ref.index < len(accs):
            raise _fail(kernel, f"Acc({ref.index}) is only valid in an epilogue with that many "
                                "results")
        return accs[ref.index]
    raise _fail(kernel, f"expected a value reference, found {ref!r}")


def _check_const(kernel: object, c: K.Const) -> None:
    v, dt = c.value, c.dtype  # numpy scalars are accepted too
    is_bool = getattr(getattr(v, "dtype", None), "kind", "") == "b"  # numpy.bool_
    if dt == "bool":
        ok = (isinstance(v, numbers.Integral) or is_bool) and int(v) in (0, 1)
    elif dt in K.FLOAT_DTYPES:
        ok = isinstance(v, numbers.Real)
    elif isinstance(v, bool) or is_bool:
        ok = True
    else:
        bits = 8 * K.DTYPES[dt]
        lo, hi = (0, 2**bits - 1) if dt.startswith("u") else (-(2**(bits - 1)), 2**(bits - 1) - 1)
        ok = isinstance(v, numbers.Integral) and lo <= int(v) <= hi
    if not ok:
        raise _fail(kernel, f"Const({v!r}, {dt!r}): the value is not representable in {dt}")


def _check_body(kernel: object, body: Sequence[K.ScalarOp], yields: Sequence[object],
                ins: Sequence[K.MappedOperand], ndims: int,
                accs: Sequence[str] | None) -> list[str]:
    """Type-check an SSA body; return the dtypes of ``yields``."""
    done: list[str] = []
    for i, op in enumerate(body):
        where = f"body[{i}] {op.opcode!r}"
        if op.opcode not in K.OPCODES:
            raise _fail(kernel, f"{where}: unknown opcode; expected one of {', '.join(K.OPCODES)}")
        if len(op.args) != K.OPCODES[op.opcode]:
            raise _fail(kernel, f"{where}: takes {K.OPCODES[op.opcode]} arguments, found "
                                f"{len(op.args)}")
        if op.dtype not in K.DTYPES:
            raise _fail(kernel, f"{where}: unknown result dtype {op.dtype!r}")
        at = [_value_dtype(kernel, a, ins, done, ndims, accs) for a in op.args]
        code, dt = op.opcode, op.dtype
        if code == "cast":
            pass
        elif code.startswith("cmp_"):
            if dt != "bool" or at[0] != at[1]:
                raise _fail(kernel, f"{where}: compares two values of one dtype into bool, "
                                    f"found {at} -> {dt}")
        elif code == "select":
            if at != ["bool", dt, dt]:
                raise _fail(kernel, f"{where}: expected (bool, {dt}, {dt}), found {at}")
        else:
            if any(a != dt for a in at):
                raise _fail(kernel, f"{where}: arguments must have the result dtype {dt}, found "
                                    f"{at}; insert a cast")
            if code in K._FLOAT_ONLY and dt not in K.FLOAT_DTYPES:
                raise _fail(kernel, f"{where}: needs a float dtype, found {dt}")
            if code in K._NO_BOOL and dt == "bool":
                raise _fail(kernel, f"{where}: not defined on bool")
            if code in K._LOGICAL and dt in K.FLOAT_DTYPES:
                raise _fail(kernel, f"{where}: needs bool or an integer dtype, found {dt}")
        done.append(dt)
    return [_value_dtype(kernel, y, ins, done, ndims, accs) for y in yields]


def _check_epilogue(kernel: object, epi: K.Epilogue, space: tuple[int, ...],
                    accs: Sequence[str], outs: Sequence[str]) -> None:
    for i, m in enumerate(epi.inputs):
        _check_map(kernel, m, space, f"epilogue input {i}")
    ydt = _check_body(kernel, epi.body, epi.yields, epi.inputs, len(space), accs)
    if list(ydt) != list(outs):
        raise _fail(kernel, f"epilogue yields {ydt}, outputs need {list(outs)}")


def _check_generic(k: K.GenericKernel) -> None:
    space = tuple(k.iteration_space)
    if len(k.iterator_types) != len(space) or any(t not in K.ITERATOR_TYPES
                                                   for t in k.iterator_types):
        raise _fail(k, f"iterator_types {k.iterator_types} must give 'parallel' or 'reduction' "
                       f"for each of the {len(space)} dims")
    if any(n < 0 for n in space):
        raise _fail(k, f"negative iteration dim in {space}")
    for i, m in enumerate(k.inputs):
        _check_map(k, m, space, f"input {i}")
    for i, m in enumerate(k.outputs):
        _check_map(k, m, space, f"output {i}")
    if not k.outputs or len(k.yields) != len(k.outputs):
        raise _fail(k, f"needs one yield per output, found {len(k.yields)} yields for "
                       f"{len(k.outputs)} outputs")
    red = [d for d, t in enumerate(k.iterator_types) if t == "reduction"]
    combiners = k.combiners or (None,) * len(k.outputs)
    if len(combiners) != len(k.outputs):
        raise _fail(k, f"{len(combiners)} combiners for {len(k.outputs)} outputs")
    for i, (m, c) in enumerate(zip(k.outputs, combiners)):
        if red and c not in K.COMBINERS:
            raise _fail(k, f"output {i}: a reduction kernel needs a combiner in {K.COMBINERS}, "
                           f"found {c!r}")
        if not red and c is not None:
            raise _fail(k, f"output {i}: combiner {c!r} given but no dim is a reduction")
        if any(m.map.depends_on(d) for d in red):
            raise _fail(k, f"output {i}: its map depends on a reduction dim")
    ydt = _check_body(k, k.body, k.yields, k.inputs, len(space), None)
    outs = [m.operand.dtype for m in k.outputs]
    for i, (y, c) in enumerate(zip(ydt, combiners)):
        if c is not None and y == "bool" and c in ("sum", "prod"):
            raise _fail(k, f"output {i}: {c} of bool; cast to an integer first")
    if k.finalize is None:
        if ydt != outs:
            raise _fail(k, f"yields have dtypes {ydt}, outputs need {outs}; insert casts")
        return
    if any(m.map.depends_on(d) for m in k.finalize.inputs for d in red):
        raise _fail(k, "a finalize input map depends on a reduction dim")
    fin_refs = [a for op in k.finalize.body for a in op.args] + list(k.finalize.yields)
    if any(isinstance(a, K.IterIndex) and a.dim in red for a in fin_refs):
        raise _fail(k, "finalize reads IterIndex of a reduction dim")
    _check_epilogue(k, k.finalize, space, ydt, outs)


def _check_named(k: K.Kernel) -> None:
    for op, _ in K.kernel_operands(k):
        _check_operand(k, op, "operand")
    out = k.out
    if isinstance(k, K.MatmulKernel):
        if len(k.lhs.shape) < 2 or len(k.rhs.shape) < 2 or len(out.shape) < 2:
            raise _fail(k, "lhs, rhs and out need rank >= 2 (reshape vectors to matrices)")
        m, n, kk = k.mnk
        k2 = k.rhs.shape[-1] if k.transpose_b else k.rhs.shape[-2]
        if k2 != kk:
            raise _fail(k, f"contraction sizes differ: lhs has K={kk}, rhs has {k2}")
        from hal_core.ir.opdefs import OpError, broadcast_shapes  # hal_core's import stays light

        try:
            batch = broadcast_shapes(k.lhs.shape[:-2], k.rhs.shape[:-2])
        except OpError as exc:
            raise _fail(k, f"batch dims {k.lhs.shape[:-2]} and {k.rhs.shape[:-2]} do not "
                           f"broadcast: {exc.message}") from None
        if tuple(out.shape) != batch + (m, n):
            raise _fail(k, f"out shape {out.shape}, expected {batch + (m, n)}")
        if not (k.lhs.dtype == k.rhs.dtype == out.dtype):
            raise _fail(k, f"lhs, rhs, out dtypes differ: {k.lhs.dtype}, {k.rhs.dtype}, "
                           f"{out.dtype}")
        acc = k.acc_dtype or out.dtype
    elif isinstance(k, K.Conv2dKernel):
        acc = k.acc_dtype or out.dtype
        _check_conv(k)
    elif isinstance(k, K.Pool2dKernel):
        acc = out.dtype
        _check_pool(k)
    elif isinstance(k, K.ArgReduceKernel):
        shp = k.input.shape
        if not 0 <= k.axis < len(shp):
            raise _fail(k, f"axis {k.axis} out of range for rank {len(shp)}")
        if k.kind not in ("argmax", "argmin") or out.dtype not in ("int32", "int64"):
            raise _fail(k, f"kind must be argmax/argmin and out int32/int64, found {k.kind}, "
                           f"{out.dtype}")
        if shp[k.axis] == 0:
            raise _fail(k, "arg-reduction over an empty axis has no answer")
        kept = shp[:k.axis] + (1,) + shp[k.axis + 1:]
        if tuple(out.shape) not in (shp[:k.axis] + shp[k.axis + 1:], kept):
            raise _fail(k, f"out shape {out.shape} does not match input {shp} reduced on "
                           f"axis {k.axis}")
        return
    elif isinstance(k, K.GatherKernel):
        shp = k.data.shape
        if not 0 <= k.axis < len(shp):
            raise _fail(k, f"axis {k.axis} out of range for rank {len(shp)}")
        if k.indices.dtype not in K.INT_DTYPES or k.data.dtype != out.dtype:
            raise _fail(k, f"indices must be integers and out must have data's dtype, found "
                           f"{k.indices.dtype}, {k.data.dtype} -> {out.dtype}")
        want = shp[:k.axis] + tuple(k.indices.shape) + shp[k.axis + 1:]
        if tuple(out.shape) != want:
            raise _fail(k, f"out shape {out.shape}, expected {want}")
        if shp[k.axis] == 0 and math.prod(k.indices.shape) > 0:
            raise _fail(k, "gathering from an empty axis")
        acc = out.dtype
    elif isinstance(k, K.SoftmaxKernel):
        if not 0 <= k.axis < len(k.input.shape) or k.input.shape != out.shape:
            raise _fail(k, f"axis {k.axis} and shapes {k.input.shape} -> {out.shape} mismatch")
        if out.dtype not in K.FLOAT_DTYPES or k.input.dtype != out.dtype:
            raise _fail(k, f"softmax needs matching float dtypes, found {k.input.dtype} -> "
                           f"{out.dtype}")
        acc = out.dtype
    else:
        raise CompileError(f"expected a kernel IR kernel, found {type(k).__name__}")
    if acc not in K.DTYPES:
        raise _fail(k, f"unknown acc_dtype {acc!r}")
    if k.epilogue is not None:  # without one, an acc_dtype result is cast to out's dtype
        _check_epilogue(k, k.epilogue, tuple(out.shape), [acc], [out.dtype])


def _window_out(size: int, k: int, s: int, d: int, p0: int, p1: int) -> tuple[int, int]:
    span = d * (k - 1) + 1
    room = size + p0 + p1 - span
    return room // s + 1, -(-room // s) + 1


def _check_conv(k: K.Conv2dKernel) -> None:
    x, f, o = k.input.shape, k.filter.shape, k.out.shape
    if len(x) != 4 or len(f) != 4 or len(o) != 4:
        raise _fail(k, f"expected NCHW input, OIHW filter, NCHW out; found ranks "
                       f"{len(x)}, {len(f)}, {len(o)}")
    g = k.groups
    if g < 1 or x[1] % g or f[0] % g or f[1] * g != x[1]:
        raise _fail(k, f"groups={g}: input channels {x[1]} and filter {f} do not split")
    if min(k.strides) < 1 or min(k.dilation) < 1 or min(k.padding) < 0:
        raise _fail(k, "strides and dilation must be >= 1, padding >= 0")
    oh = _window_out(x[2], f[2], k.strides[0], k.dilation[0], k.padding[0], k.padding[2])[0]
    ow = _window_out(x[3], f[3], k.strides[1], k.dilation[1], k.padding[1], k.padding[3])[0]
    if tuple(o) != (x[0], f[0], oh, ow) or oh < 1 or ow < 1:
        raise _fail(k, f"out shape {o}, expected {(x[0], f[0], oh, ow)}")
    if k.bias is not None and tuple(k.bias.shape) != (f[0],):
        raise _fail(k, f"bias shape {k.bias.shape}, expected ({f[0]},)")
    dts = {k.input.dtype, k.filter.dtype, k.out.dtype} | ({k.bias.dtype} if k.bias else set())
    if len(dts) != 1:
        raise _fail(k, f"operand dtypes differ: {sorted(dts)}")


def _check_pool(k: K.Pool2dKernel) -> None:
    x, o = k.input.shape, k.out.shape
    if len(x) != 4 or len(o) != 4 or tuple(o[:2]) != tuple(x[:2]):
        raise _fail(k, f"expected NCHW input and out with the same N, C; found {x} -> {o}")
    if k.kind not in ("max", "avg") or k.input.dtype != k.out.dtype:
        raise _fail(k, f"kind must be max/avg with equal dtypes, found {k.kind}, "
                       f"{k.input.dtype} -> {k.out.dtype}")
    if min(k.kernel_size) < 1 or min(k.strides) < 1 or min(k.padding) < 0:
        raise _fail(k, "kernel_size and strides must be >= 1, padding >= 0")
    for ax, (i, kk, s, p0, p1) in enumerate(((x[2], k.kernel_size[0], k.strides[0],
                                              k.padding[0], k.padding[2]),
                                             (x[3], k.kernel_size[1], k.strides[1],
                                              k.padding[1], k.padding[3]))):
        lo, hi = _window_out(i, kk, s, 1, p0, p1)
        if o[2 + ax] not in (lo, hi) or o[2 + ax] < 1:
            raise _fail(k, f"out spatial dim {ax} is {o[2 + ax]}, expected {lo} (floor) or "
                           f"{hi} (ceil mode)")
        if kk > i + p0 + p1 or p0 >= kk or p1 >= kk:
            raise _fail(k, f"window {kk} with padding ({p0}, {p1}) does not fit input size {i}")


def validate(kernel: K.Kernel) -> None:
    """Raise CompileError unless ``kernel`` is internally consistent."""
    if isinstance(kernel, K.GenericKernel):
        _check_generic(kernel)
    else:
        _check_named(kernel)
    flags: dict[int, set[bool]] = {}
    for op, written in K.kernel_operands(kernel):
        flags.setdefault(op.binding, set()).add(op.constant)
        if written and op.constant:
            raise _fail(kernel, f"binding {op.binding} is marked constant but written; a module"
                                " constant is read only")
    mixed = sorted(b for b, f in flags.items() if len(f) > 1)
    if mixed:
        raise _fail(kernel, f"the operands of binding {mixed[0]} disagree on constant=True;"
                            " a binding is a module constant for all its operands or none")


def validate_executable(executable: K.KernelExecutable) -> None:
    if not executable.kernels:
        raise CompileError(f"executable {executable.name!r} has no kernels")
    for k in executable.kernels:
        validate(k)
