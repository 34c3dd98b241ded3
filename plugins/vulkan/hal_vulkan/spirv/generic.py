"""GenericKernel -> SPIR-V, and the scalar-body evaluation every lowering shares.

Parallel-only kernels: one invocation per point of the iteration space (per 2 or 4 points
along the innermost dim when that lets 1/2-byte outputs be stored as whole words). Kernels with
reduction iterators: one invocation per output point looping over the reduction dims when the
reduction is short or neighbouring outputs read neighbouring elements; otherwise a workgroup
per output point, each invocation striding over the reduction space (coalesced reads),
combined by a shared-memory tree.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from hal_core.compiler.kernel_ir import (
    DTYPES, Acc, Const, Epilogue, GenericKernel, Input, IterIndex, MappedOperand, Result, ScalarOp,
    ValueRef,
)
from hal_vulkan.spirv import scalar
from hal_vulkan.spirv.builder import Op
from hal_vulkan.spirv.shader import Limit, Shader, ShaderFactory, split_grid

Coords = dict[int, int]  # iteration dim -> uint32 id of its coordinate


@dataclass
class Plan:
    """Launch shape of a kernel: workgroup size (x only) and grid."""

    local_size: int
    grid: tuple[int, int, int]
    shared_bytes: int = 0


def dim_strides(mapped: MappedOperand) -> tuple[int, dict[int, int]]:
    """(constant, {iteration dim: element stride}) of the operand's row-major index."""
    shape = mapped.operand.shape
    strides = [math.prod(shape[j + 1:]) for j in range(len(shape))]
    constant = sum(e.constant * s for e, s in zip(mapped.map.exprs, strides))
    terms: dict[int, int] = {}
    for e, s in zip(mapped.map.exprs, strides):
        for d, c in enumerate(e.coeffs):
            if c:
                terms[d] = terms.get(d, 0) + c * s
    return constant, terms


def element_index(sh: Shader, mapped: MappedOperand, coords: Coords) -> int:
    """Row-major element index of ``mapped.operand`` at the point ``coords``: a linear form."""
    constant, terms = dim_strides(mapped)
    return sh.linear(constant, [(c, coords[d]) for d, c in sorted(terms.items())])


def evaluate(sh: Shader, body: tuple[ScalarOp, ...], yields: tuple[ValueRef, ...],
             load_input: Callable[[int], tuple[int, str]], coords: Coords,
             accs: list[tuple[int, str]] = ()) -> list[tuple[int, str]]:
    """Emit ``body`` and return the ``yields`` as (register id, dtype)."""
    inputs: dict[int, tuple[int, str]] = {}
    results: list[tuple[int, str]] = []

    def ref(v: ValueRef) -> tuple[int, str]:
        if isinstance(v, Input):
            if v.index not in inputs:
                inputs[v.index] = load_input(v.index)
            return inputs[v.index]
        if isinstance(v, Result):
            return results[v.index]
        if isinstance(v, Const):
            return sh.const(v.dtype, v.value), v.dtype
        if isinstance(v, IterIndex):
            return sh.f.op(Op.UConvert, sh.m.t_int(64), coords[v.dim]), "int64"
        if isinstance(v, Acc):
            return accs[v.index]
        raise TypeError(f"unknown value reference {v!r}")

    for op in body:
        results.append((scalar.emit(sh, op, [ref(a) for a in op.args]), op.dtype))
    return [ref(y) for y in yields]


def input_loader(sh: Shader, inputs: tuple[MappedOperand, ...],
                 coords: Coords) -> Callable[[int], tuple[int, str]]:
    def load(i: int) -> tuple[int, str]:
        m = inputs[i]
        return sh.load(m.operand, element_index(sh, m, coords)), m.operand.dtype
    return load


def apply_epilogue(sh: Shader, epi: Epilogue | None, accs: list[tuple[int, str]],
                   coords: Coords) -> list[tuple[int, str]]:
    if epi is None:
        return accs
    return evaluate(sh, epi.body, epi.yields, input_loader(sh, epi.inputs, coords), coords, accs)


def decompose(sh: Shader, linear: int, dims: list[int], space: tuple[int, ...]) -> Coords:
    """Coordinates of ``dims`` (row-major, last fastest) from a linear uint32 index."""
    coords: Coords = {}
    rest = linear
    for d in reversed(dims):
        n = space[d]
        if d == dims[0]:
            coords[d] = rest
        else:
            coords[d] = sh.umod(rest, sh.u(n))
            rest = sh.udiv(rest, sh.u(n))
    return coords


def launch(env_limits: Limit, threads: int, local_size: int) -> Plan:
    groups = -(-max(threads, 1) // local_size)
    return Plan(local_size, split_grid(groups, env_limits("maxComputeWorkGroupCount")))


def lower_generic(k: GenericKernel, sh_factory: ShaderFactory, limit: Limit) -> Plan:
    par = [d for d, t in enumerate(k.iterator_types) if t == "parallel"]
    red = [d for d, t in enumerate(k.iterator_types) if t == "reduction"]
    space = k.iteration_space
    outputs = math.prod(space[d] for d in par)
    red_size = math.prod(space[d] for d in red)
    if red and red_size >= 256 and outputs > 0 and not _coalesced_across_outputs(k, par):
        return _lower_tree_reduction(k, sh_factory, limit, par, red, outputs, red_size)
    local = min(64, limit("maxComputeWorkGroupInvocations"), limit("maxComputeWorkGroupSize")[0])
    pack = 1 if red else _pack_factor(k, par)
    if pack > 1:
        return _lower_packed(k, sh_factory, limit, par, outputs, pack, local)
    plan = launch(limit, outputs, local)
    sh: Shader = sh_factory((local, 1, 1))
    gid = sh.add(sh.mul(sh.workgroup_linear_id(plan.grid), sh.u(local)), sh.local_id())
    with sh.if_(sh.ult(gid, sh.u(outputs))):
        coords = decompose(sh, gid, par, space) if par else {}
        if not red and _is_copy(k):  # moves elements as they are: int64 needs no Int64
            for y, out in zip(k.yields, k.outputs):
                src = k.inputs[y.index]
                sh.copy_element(src.operand, element_index(sh, src, coords), out.operand,
                                element_index(sh, out, coords))
        else:
            vals = (evaluate(sh, k.body, k.yields, input_loader(sh, k.inputs, coords), coords)
                    if not red else _serial_reduction(sh, k, coords, red))
            _store_outputs(sh, k, vals, coords)
    sh.finish()
    return plan


def _pack_factor(k: GenericKernel, par: list[int]) -> int:
    """Points per invocation so that every 1- or 2-byte output is written in whole words
    (plain stores instead of atomic read-modify-writes); 1 when the layout does not allow it."""
    small = [DTYPES[o.operand.dtype] for o in k.outputs if DTYPES[o.operand.dtype] < 4]
    if not small or not par:
        return 1
    pack, inner = 4 // min(small), par[-1]
    if k.iteration_space[inner] % pack:
        return 1
    for o in k.outputs:
        size = DTYPES[o.operand.dtype]
        if size >= 4:
            continue
        constant, strides = dim_strides(o)
        if strides.get(inner) != 1 or (o.operand.byte_offset + constant * size) % 4:
            return 1
        if any((s * size) % 4 for d, s in strides.items() if d != inner):
            return 1
    return pack


def _lower_packed(k: GenericKernel, sh_factory: ShaderFactory, limit: Limit, par: list[int],
                  outputs: int, pack: int, local: int) -> Plan:
    """Parallel kernel, ``pack`` consecutive points along the innermost dim per invocation:
    the 1/2-byte outputs of those points fill whole words, stored once."""
    inner = par[-1]
    plan = launch(limit, outputs // pack, local)
    sh: Shader = sh_factory((local, 1, 1))
    gid = sh.add(sh.mul(sh.workgroup_linear_id(plan.grid), sh.u(local)), sh.local_id())
    space = tuple(n // pack if d == inner else n for d, n in enumerate(k.iteration_space))
    with sh.if_(sh.ult(gid, sh.u(outputs // pack))):
        base = decompose(sh, gid, par, space)
        first = sh.mul(base[inner], sh.u(pack))
        words: dict[int, int | None] = {}
        for j in range(pack):
            coords = dict(base) | {inner: sh.add(first, sh.u(j))}
            vals = evaluate(sh, k.body, k.yields, input_loader(sh, k.inputs, coords), coords)
            for i, (out, (v, dt)) in enumerate(zip(k.outputs, vals)):
                if dt != out.operand.dtype:
                    v = scalar.cast(sh, dt, out.operand.dtype, v)
                size = DTYPES[out.operand.dtype]
                if size >= 4:
                    sh.store(out.operand, element_index(sh, out, coords), v)
                    continue
                per_word, slot = 4 // size, j % (4 // size)
                bits = sh.subword_bits(out.operand.dtype, v)
                if slot:
                    bits = sh.f.op(Op.ShiftLeftLogical, sh.u32, bits, sh.u(8 * size * slot))
                    bits = sh.f.op(Op.BitwiseOr, sh.u32, words[i], bits)
                words[i] = bits
                if slot == per_word - 1:  # the word is complete: one plain store
                    start = dict(coords) | {inner: sh.add(first, sh.u(j - slot))}
                    sh.store_word(out.operand, element_index(sh, out, start), bits)
    sh.finish()
    return plan


def _is_copy(k: GenericKernel) -> bool:
    """A kernel that only moves elements (transpose, slice, concat piece, broadcast)."""
    return not k.body and k.finalize is None and all(
        isinstance(y, Input) and k.inputs[y.index].operand.dtype == o.operand.dtype
        for y, o in zip(k.yields, k.outputs))


def _coalesced_across_outputs(k: GenericKernel, par: list[int]) -> bool:
    """Whether neighbouring outputs read neighbouring elements (sum over a leading axis): then
    one invocation per output, looping, reads memory coalesced; otherwise (reducing the
    contiguous axis) a workgroup per output striding the reduction is the coalesced order."""
    if not par or k.iteration_space[par[-1]] < 32:
        return False
    return any(abs(dim_strides(m)[1].get(par[-1], 0)) == 1 for m in k.inputs)


def _serial_reduction(sh: Shader, k: GenericKernel, coords: Coords,
                      red: list[int]) -> list[tuple[int, str]]:
    dtypes = _yield_dtypes(k)
    accs = [sh.var(sh.reg(dt), scalar.identity(sh, c, dt)) for c, dt in zip(k.combiners, dtypes)]

    def nest(level: int) -> None:
        if level == len(red):
            vals = evaluate(sh, k.body, k.yields, input_loader(sh, k.inputs, coords), coords)
            for ptr, (v, dt), c in zip(accs, vals, k.combiners):
                cur = sh.f.load(sh.reg(dt), ptr)
                sh.f.store(ptr, scalar.combine(sh, c, dt, cur, v))
            return
        with sh.loop(sh.u(0), sh.u(k.iteration_space[red[level]])) as i:
            coords[red[level]] = i
            nest(level + 1)

    nest(0)
    return [(sh.f.load(sh.reg(dt), p), dt) for p, dt in zip(accs, dtypes)]


def _yield_dtypes(k: GenericKernel) -> list[str]:
    out = []
    for y in k.yields:
        if isinstance(y, Result):
            out.append(k.body[y.index].dtype)
        elif isinstance(y, Input):
            out.append(k.inputs[y.index].operand.dtype)
        elif isinstance(y, Const):
            out.append(y.dtype)
        else:
            out.append("int64")
    return out


def _store_outputs(sh: Shader, k: GenericKernel, vals: list[tuple[int, str]],
                   coords: Coords) -> None:
    if k.finalize is not None:
        vals = apply_epilogue(sh, k.finalize, vals, coords)
    for out, (v, dt) in zip(k.outputs, vals):
        if dt != out.operand.dtype:
            v = scalar.cast(sh, dt, out.operand.dtype, v)
        sh.store(out.operand, element_index(sh, out, coords), v)


def tree_size(limit: Limit, bytes_per_invocation: int) -> int:
    """Invocations of a tree-reducing workgroup: a power of two, at most 256, within the
    workgroup and shared-memory limits."""
    local = min(256, limit("maxComputeWorkGroupInvocations"), limit("maxComputeWorkGroupSize")[0])
    while local > 1 and local * bytes_per_invocation > limit("maxComputeSharedMemorySize"):
        local //= 2
    return 1 << (local.bit_length() - 1)


def tree_combine(sh: Shader, shared: list[int], values: list[int], lid: int, local: int,
                 dtypes: list[str], combiners: tuple[str | None, ...]) -> None:
    """Combine every invocation's ``values`` into element 0 of the ``shared`` arrays; ends
    with a barrier, so all invocations may read the results. Unrolled, every invocation
    reaches every barrier (uniform control flow)."""
    for arr, v, dt in zip(shared, values, dtypes):
        sh.f.store(sh.shared_ptr(arr, sh.reg(dt), lid), v)
    step = local // 2
    while step >= 1:
        sh.barrier()
        with sh.if_(sh.ult(lid, sh.u(step))):
            other = sh.add(lid, sh.u(step))
            for arr, dt, c in zip(shared, dtypes, combiners):
                t = sh.reg(dt)
                mine = sh.shared_ptr(arr, t, lid)
                theirs = sh.f.load(t, sh.shared_ptr(arr, t, other))
                sh.f.store(mine, scalar.combine(sh, c, dt, sh.f.load(t, mine), theirs))
        step //= 2
    sh.barrier()


def _lower_tree_reduction(k: GenericKernel, sh_factory: ShaderFactory, limit: Limit,
                          par: list[int], red: list[int], outputs: int,
                          red_size: int) -> Plan:
    """A workgroup per output point; invocations stride the reduction, then a shared tree."""
    dtypes = _yield_dtypes(k)
    bytes_per = sum(8 if dt in ("int64", "uint64", "float64") else 4 for dt in dtypes)
    local = tree_size(limit, bytes_per)
    plan = Plan(local, split_grid(outputs, limit("maxComputeWorkGroupCount")), local * bytes_per)
    sh: Shader = sh_factory((local, 1, 1))
    wg = sh.workgroup_linear_id(plan.grid)
    lid = sh.local_id()
    shared = [sh.shared_array(sh.reg(dt), local) for dt in dtypes]
    in_range = sh.ult(wg, sh.u(outputs))
    coords = decompose(sh, wg, par, k.iteration_space) if par else {}
    accs = [sh.var(sh.reg(dt), scalar.identity(sh, c, dt)) for c, dt in zip(k.combiners, dtypes)]
    with sh.if_(in_range):
        with sh.loop(lid, sh.u(red_size), sh.u(local)) as r:
            point = dict(coords) | decompose(sh, r, red, k.iteration_space)
            vals = evaluate(sh, k.body, k.yields, input_loader(sh, k.inputs, point), point)
            for ptr, (v, dt), c in zip(accs, vals, k.combiners):
                sh.f.store(ptr, scalar.combine(sh, c, dt, sh.f.load(sh.reg(dt), ptr), v))
    tree_combine(sh, shared, [sh.f.load(sh.reg(dt), p) for p, dt in zip(accs, dtypes)], lid,
                 local, dtypes, k.combiners)
    first = sh.f.op(Op.IEqual, sh.bool, lid, sh.u(0))
    with sh.if_(sh.f.op(Op.LogicalAnd, sh.bool, first, in_range)):
        vals = [(sh.f.load(sh.reg(dt), sh.shared_ptr(arr, sh.reg(dt), sh.u(0))), dt)
                for arr, dt in zip(shared, dtypes)]
        _store_outputs(sh, k, vals, coords)
    sh.finish()
    return plan
