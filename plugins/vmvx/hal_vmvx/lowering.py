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


def dense_strides(shape: Sequence[int], itemsize: int) -> tuple[int, ...]:
    out, acc = [], itemsize
    for n in reversed(shape):
        out.append(acc)
        acc *= max(n, 1)
    return tuple(reversed(out))


def map_strides(m: K.MappedOperand) -> tuple[int, list[int]]:
    """Byte offset of point 0 and byte stride per iteration dim of an operand's map."""
    op = m.operand
    isz = K.DTYPES[op.dtype]
    st = dense_strides(op.shape, isz)
    offset = op.byte_offset + sum(s * e.constant for s, e in zip(st, m.map.exprs))
    strides = [sum(s * e.coeffs[i] for s, e in zip(st, m.map.exprs))
               for i in range(m.map.num_dims)]
    return offset, strides


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
    par = [d for d in range(nd) if k.iterator_types[d] == "parallel"]
    red = [d for d in range(nd) if k.iterator_types[d] == "reduction"]
    fin_inputs = k.finalize.inputs if k.finalize else ()
    mapped = list(k.inputs) + list(k.outputs) + list(fin_inputs)
    geo = [map_strides(m) for m in mapped]
    if any(k.iteration_space[d] == 0 for d in par):
        return kb.finish(0, 0, 1)  # nothing to compute
    pinned = _iter_dims_used(k)
    # A reduction whose inputs are contiguous along a parallel dim (sum over axis 0 of a
    # row-major matrix) runs reduction-first: chunks of whole input rows are reduced and
    # accumulated serially. Chunking the parallel dim instead would read a few contiguous
    # elements per row, each chunk striding over the whole input.
    outer = bool(par) and _reduction_outermost(k, geo, par, red)
    order = red + par if outer else par + red
    # Dims in execution order; size-1 dims vanish unless pinned.
    groups: list[list[int]] = []
    for d in order:
        n = k.iteration_space[d]
        if n == 1 and d not in pinned:
            continue
        if groups and d not in pinned and groups[-1][-1] not in pinned:
            prev = groups[-1][-1]
            same_kind = k.iterator_types[prev] == k.iterator_types[d]
            if same_kind and all(s[prev] == s[d] * n for _, s in geo):
                groups[-1].append(d)
                continue
        groups.append([d])
    space = [math.prod(k.iteration_space[d] for d in g) for g in groups]
    gstr = [[s[g[-1]] for g in groups] for _, s in geo]
    par_axes = [i for i, g in enumerate(groups) if k.iterator_types[g[0]] == "parallel"]
    red_axes = [i for i, g in enumerate(groups) if k.iterator_types[g[0]] == "reduction"]
    npar = len(par_axes)
    # A reduction over many elements with nothing parallel outside it (a full reduction, or a
    # reduction-first one) streams chunks of its first dim serially, accumulating, instead of
    # computing its whole body at once.
    serial = bool(red_axes) and red_axes[0] == 0 and space[0] > 1 and \
        (outer or math.prod(space) > CHUNK_ELEMENTS)
    tile = 0 if npar or serial else -1
    rows = space[0] if npar or serial else 1
    ptile = tile if npar and not serial else -1  # tile axis of values over the parallel dims
    pspace = [space[i] for i in par_axes]
    dim_group = {d: i for i, g in enumerate(groups) for d in g}
    par_pos = {d: par_axes.index(i) for d, i in dim_group.items() if i in par_axes}

    def iota_in(sub: Sequence[int], sub_tile: int, pos: dict[int, int]) -> Callable[[int], int]:
        return lambda d: kb.iota(sub, pos[d], sub_tile)

    n_in, n_out = len(k.inputs), len(k.outputs)
    in_vals = [kb.view(m.operand.binding, m.operand.dtype, geo[i][0], space, gstr[i], tile)
               for i, m in enumerate(k.inputs)]
    out_vals = []
    for i, m in enumerate(k.outputs):
        g = n_in + i
        shape, strides = (space, gstr[g]) if not red else \
            (pspace, [gstr[g][a] for a in par_axes])
        out_vals.append(kb.view(m.operand.binding, m.operand.dtype, geo[g][0], shape, strides,
                                tile if not red else ptile))
    out_dtypes = [m.operand.dtype for m in k.outputs]
    if not red:
        lower_body(kb, k.body, k.yields, in_vals, [], iota_in(space, tile, dim_group), space,
                   tile, list(zip(out_vals, out_dtypes)))
    else:
        ys = lower_body(kb, k.body, k.yields, in_vals, [], iota_in(space, tile, dim_group),
                        space, tile, None)
        acc_vals, narrowing = [], []
        for i, (y, comb) in enumerate(zip(ys, k.combiners)):
            if kb.values[y].kind in (SCALAR, IOTA):  # reductions need a full-shaped source
                full = kb.scratch(kb.values[y].dtype, space, tile)
                kb.emit("copy", full, [y])
                y = full
            ydt = kb.values[y].dtype
            acc = out_vals[i] if k.finalize is None else kb.scratch(ydt, pspace, ptile)
            if serial and comb == "sum" and ydt in ("float16", "float32"):
                # Chunk sums are added into a float64 accumulator, rounded once at the end:
                # adding them in the narrow type one after another loses digits (2e-4 at 1e9).
                wide = kb.scratch("float64", pspace, -1)
                kb.emit("reduce_sum", wide, [y], [serial, *red_axes])
                narrowing.append((acc, wide))
            else:
                kb.emit("reduce_" + comb, acc, [y], [serial, *red_axes])
            acc_vals.append(acc)
        tail_from = len(kb.instrs)
        for acc, wide in narrowing:
            kb.emit("cast", acc, [wide])
        if k.finalize is not None:
            fin_vals = [kb.view(m.operand.binding, m.operand.dtype, geo[n_in + n_out + i][0],
                                pspace, [gstr[n_in + n_out + i][a] for a in par_axes], ptile)
                        for i, m in enumerate(fin_inputs)]
            lower_body(kb, k.finalize.body, k.finalize.yields, fin_vals, acc_vals,
                       iota_in(pspace, ptile, par_pos), pspace, ptile,
                       list(zip(out_vals, out_dtypes)))
    # Chunks exist to keep scratch in cache; a kernel without scratch over its tile axis (a
    # plain sum, a single ufunc) is one numpy call per tile, which also lets numpy pick the
    # loop order of a reduction itself.
    chunked = any(v.kind == SCRATCH and v.tile_axis == tile and tile >= 0 for v in kb.values)
    if serial:
        chunk = chunk_rows_for(rows, math.prod(space[1:])) if chunked else 0
        return kb.finish(rows, chunk, 1, True, len(kb.instrs) - tail_from)
    inner = math.prod(space[1:]) if npar else math.prod(space)
    return kb.finish(rows, chunk_rows_for(rows, inner) if npar and chunked else 0,
                     workgroups_for(rows, math.prod(space)) if npar else 1)


def _reduction_outermost(k: K.GenericKernel, geo: Sequence[tuple[int, list[int]]],
                         par: Sequence[int], red: Sequence[int]) -> bool:
    """Whether every input that walks the reduction is contiguous along a parallel dim, over a
    reduction long enough that whole-row chunks beat strided column chunks."""
    if math.prod(k.iteration_space[d] for d in red) < 16:
        return False
    seen = False
    for _, strides in geo[:len(k.inputs)]:
        if not any(strides[d] for d in red):
            continue  # a broadcast input: its layout does not decide anything
        live = [d for d in par + red if strides[d] and k.iteration_space[d] > 1]
        inner = min(live, key=lambda d: abs(strides[d]))
        if inner not in par:
            return False
        seen = True
    return seen


def _iter_dims_used(k: K.GenericKernel) -> set[int]:
    bodies = list(k.body) + (list(k.finalize.body) if k.finalize else [])
    refs = [a for op in bodies for a in op.args] + list(k.yields)
    refs += list(k.finalize.yields) if k.finalize else []
    return {a.dim for a in refs if isinstance(a, K.IterIndex)}
