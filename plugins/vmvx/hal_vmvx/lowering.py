"""Kernel IR -> vmvx bytecode: the generic kernels and the shared elementwise machinery.

Every analysis happens here so that ``run`` only slices views and calls numpy:

* each operand becomes a strided *view* over the kernel's iteration space (an affine map is a
  byte offset plus one byte stride per iteration dim, zero for broadcast, negative for
  reversed slices);
* iteration dims are reordered (parallel first), size-1 dims dropped and adjacent dims merged
  when every operand walks them contiguously, so an elementwise kernel over a dense tensor
  becomes one long row;
* the outermost parallel dim is the *tile axis*: workgroups take blocks of it, and within a
  tile the interpreter streams chunks of about :data:`CHUNK_ELEMENTS` elements so that scratch
  stays in cache.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from hal_core.compiler import kernel_ir as K
from hal_core.compiler.kernel_analysis import collapse, dense_strides, map_strides
from hal_vmvx.bytecode import IOTA, SCALAR, SCRATCH, VIEW, Instr, KernelCode, Value

CHUNK_ELEMENTS = 1 << 15        # elements per streamed chunk (scratch stays in L2)
WORKGROUP_ELEMENTS = 1 << 16    # at least this many elements per workgroup
MAX_WORKGROUPS = 64

#: Ops whose microkernel reads all its sources before writing, so its destination may be an
#: output that aliases an input (in-place elementwise).
_SINGLE_PASS = frozenset({
    "add", "sub", "mul", "max", "min", "neg", "abs", "exp", "log", "sqrt", "rsqrt", "tanh",
    "sigmoid", "relu", "floor", "ceil", "round", "cast", "cmp_eq", "cmp_ne", "cmp_lt",
    "cmp_le", "cmp_gt", "cmp_ge", "and", "or", "not", "copy",
})
#: Ops that can raise numpy floating-point warnings; kernels using them run quietly.
_NOISY = frozenset({"div", "pow", "exp", "log", "sqrt", "rsqrt", "sigmoid", "cast", "erf",
                    "reduce_sum", "reduce_prod"})


class KernelBuilder:
    """Collects the values and instructions of one bytecode kernel."""

    def __init__(self, name: str, binding_count: int) -> None:
        self.name = name
        self.binding_count = binding_count
        self.values: list[Value] = []
        self.instrs: list[Instr] = []
        self._scalars: dict[K.Const, int] = {}
        self.quiet = False

    def add(self, v: Value) -> int:
        self.values.append(v)
        return len(self.values) - 1

    def view(self, binding: int, dtype: str, offset: int, shape: Sequence[int],
             strides: Sequence[int], tile_axis: int) -> int:
        return self.add(Value(VIEW, dtype, binding, offset, tuple(shape), tuple(strides),
                              tile_axis))

    def scratch(self, dtype: str, shape: Sequence[int], tile_axis: int) -> int:
        return self.add(Value(SCRATCH, dtype, shape=tuple(shape), tile_axis=tile_axis))

    def scalar(self, dtype: str, value: float | bool) -> int:
        key = K.Const(value, dtype)  # its equality keeps 0.0 and -0.0 apart
        if key not in self._scalars:
            if dtype in K.FLOAT_DTYPES:
                v = Value(SCALAR, dtype, float_value=float(value))
            else:
                # The payload stores integers as int64 bit patterns; the loader's astype
                # restores uint64 values of 2**63 and above from their negative pattern.
                v = Value(SCALAR, dtype, int_value=(int(value) + 2**63) % 2**64 - 2**63)
            self._scalars[key] = self.add(v)
        return self._scalars[key]

    def iota(self, space: Sequence[int], axis: int, tile_axis: int) -> int:
        shape = tuple(n if d == axis else 1 for d, n in enumerate(space))
        return self.add(Value(IOTA, "int64", shape=shape, tile_axis=tile_axis if axis == tile_axis
                              else -1, int_value=axis))

    def emit(self, op: str, dst: int, srcs: Sequence[int], ints: Sequence[int] = ()) -> None:
        if op in _NOISY:
            self.quiet = True
        self.instrs.append(Instr(op, dst, tuple(srcs), tuple(int(i) for i in ints)))

    def finish(self, rows: int, chunk_rows: int, workgroup_count: int, serial: bool = False,
               tail_instrs: int = 0) -> KernelCode:
        return KernelCode(self.name, self.binding_count, rows, chunk_rows, workgroup_count,
                          tuple(self.values), tuple(self.instrs), self.quiet, serial,
                          tail_instrs)


def workgroups_for(rows: int, elements: int) -> int:
    return max(1, min(rows, elements // WORKGROUP_ELEMENTS, MAX_WORKGROUPS))


def chunk_rows_for(rows: int, inner: int) -> int:
    chunk = max(1, CHUNK_ELEMENTS // max(inner, 1))
    return 0 if chunk >= rows else chunk


# ---------------------------------------------------------------------------------------------
# Scalar bodies -> elementwise instructions


def lower_body(kb: KernelBuilder, body: Sequence[K.ScalarOp], yields: Sequence[K.ValueRef],
               inputs: Sequence[int], accs: Sequence[int], iota: Callable[[int], int],
               space: Sequence[int], tile_axis: int,
               targets: Sequence[tuple[int, str]] | None) -> list[int]:
    """Emit instructions for ``body``; return the value holding each yield.

    With ``targets`` ((value, dtype) per yield), the yields are stored there: the op producing
    a yield writes its target directly when that is safe, otherwise a copy (cast) follows.
    """
    uses_after = [set() for _ in body]  # kinds of refs read by ops after op j
    seen: set = set()
    for j in range(len(body) - 1, -1, -1):
        uses_after[j] = set(seen)
        for a in body[j].args:
            seen.add(("r", a.index) if isinstance(a, K.Result) else
                     "io" if isinstance(a, (K.Input, K.Acc)) else None)
    redirect: dict[int, int] = {}
    if targets is not None:
        for k, y in enumerate(yields):
            if not isinstance(y, K.Result) or y.index in redirect:
                continue
            j = y.index
            op = body[j]
            if (op.dtype == targets[k][1] and yields.count(y) == 1 and op.opcode in _SINGLE_PASS
                    and "io" not in uses_after[j] and ("r", j) not in uses_after[j]):
                redirect[j] = targets[k][0]
    last_use = {}
    for j, op in enumerate(body):
        for a in op.args:
            if isinstance(a, K.Result):
                last_use[a.index] = j
    for y in yields:
        if isinstance(y, K.Result):
            last_use[y.index] = len(body)
    free: dict[str, list[int]] = {}
    res: list[int] = []

    def ref(a: K.ValueRef) -> int:
        if isinstance(a, K.Input):
            return inputs[a.index]
        if isinstance(a, K.Acc):
            return accs[a.index]
        if isinstance(a, K.Result):
            return res[a.index]
        if isinstance(a, K.Const):
            return kb.scalar(a.dtype, a.value)
        return iota(a.dim)

    for j, op in enumerate(body):
        srcs = [ref(a) for a in op.args]
        for a in set(op.args):  # scratch whose last reader is this op may be reused by it
            if isinstance(a, K.Result) and last_use.get(a.index) == j and a.index not in redirect:
                free.setdefault(body[a.index].dtype, []).append(res[a.index])
        if j in redirect:
            dst = redirect[j]
        elif free.get(op.dtype) and op.opcode in _SINGLE_PASS:
            dst = free[op.dtype].pop()
        else:
            dst = kb.scratch(op.dtype, space, tile_axis)
        kb.emit(op.opcode, dst, srcs)
        res.append(dst)
    out = [ref(y) for y in yields]
    if targets is not None:
        for k, (y, (tv, _)) in enumerate(zip(yields, targets)):
            if not (isinstance(y, K.Result) and redirect.get(y.index) == tv):
                kb.emit("copy", tv, [out[k]])
    return out


# ---------------------------------------------------------------------------------------------
# Generic kernels


def lower_generic(k: K.GenericKernel) -> KernelCode:
    kb = KernelBuilder(k.name, K.binding_count(k))
    nd = len(k.iteration_space)
    red = [d for d in range(nd) if k.iterator_types[d] == "reduction"]
    fin_inputs = k.finalize.inputs if k.finalize else ()
    nest = collapse(k)  # loops: parallel then reduction, size-1 dims dropped, dense runs merged
    if nest.empty:
        return kb.finish(0, 0, 1)  # nothing to compute
    groups = nest.dims
    space = list(nest.sizes)
    geo = [(acc.offset, None) for acc in nest.operands]  # (offset, _): indexed like before
    gstr = [list(acc.strides) for acc in nest.operands]
    npar = nest.num_parallel
    # A full reduction over many elements streams chunks of its first dim serially,
    # accumulating, instead of computing its whole body at once.
    serial = not npar and len(space) > 0 and space[0] > 1 and \
        math.prod(space) > CHUNK_ELEMENTS
    tile = nest.tile_axis if npar else (0 if serial else -1)
    rows = space[0] if npar or serial else 1
    ptile = tile if npar else -1  # the tile axis of values over the parallel dims only
    red_axes = list(range(npar, len(groups)))
    dim_group = {d: i for i, g in enumerate(groups) for d in g}

    def iota_in(sub: Sequence[int], sub_tile: int) -> Callable[[int], int]:
        return lambda d: kb.iota(sub, dim_group[d], sub_tile)

    n_in, n_out = len(k.inputs), len(k.outputs)
    in_vals = [kb.view(m.operand.binding, m.operand.dtype, geo[i][0], space, gstr[i], tile)
               for i, m in enumerate(k.inputs)]
    pspace = space[:npar]
    out_vals = []
    for i, m in enumerate(k.outputs):
        g = n_in + i
        shape, strides = (space, gstr[g]) if not red else (pspace, gstr[g][:npar])
        out_vals.append(kb.view(m.operand.binding, m.operand.dtype, geo[g][0], shape, strides,
                                tile if not red else ptile))
    out_dtypes = [m.operand.dtype for m in k.outputs]
    if not red:
        lower_body(kb, k.body, k.yields, in_vals, [], iota_in(space, tile), space, tile,
                   list(zip(out_vals, out_dtypes)))
    else:
        ys = lower_body(kb, k.body, k.yields, in_vals, [], iota_in(space, tile), space, tile,
                        None)
        combiners = k.combiners
        acc_vals = []
        for i, (y, comb) in enumerate(zip(ys, combiners)):
            if kb.values[y].kind in (SCALAR, IOTA):  # reductions need a full-shaped source
                full = kb.scratch(kb.values[y].dtype, space, tile)
                kb.emit("copy", full, [y])
                y = full
            acc = out_vals[i] if k.finalize is None else kb.scratch(kb.values[y].dtype, pspace,
                                                                   ptile)
            kb.emit("reduce_" + comb, acc, [y], [serial, *red_axes])
            acc_vals.append(acc)
        tail_from = len(kb.instrs)
        if k.finalize is not None:
            fin_vals = [kb.view(m.operand.binding, m.operand.dtype, geo[n_in + n_out + i][0],
                                pspace, gstr[n_in + n_out + i][:npar], ptile)
                        for i, m in enumerate(fin_inputs)]
            lower_body(kb, k.finalize.body, k.finalize.yields, fin_vals, acc_vals,
                       iota_in(pspace, ptile), pspace, ptile, list(zip(out_vals, out_dtypes)))
    if serial:
        return kb.finish(rows, chunk_rows_for(rows, math.prod(space[1:])), 1, True,
                         len(kb.instrs) - tail_from)
    inner = math.prod(space[1:]) if npar else math.prod(space)
    return kb.finish(rows, chunk_rows_for(rows, inner) if npar else 0,
                     workgroups_for(rows, math.prod(space)) if npar else 1)

