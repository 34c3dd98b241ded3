"""Fusion: decide which tensor-IR values become buffers and which are computed inside kernels.

Elementwise ops, implicit broadcasts, ``expand``, ``transpose``, ``slice`` and splat constants
are *inlinable*, and so is a ``reshape`` that only splits dims (see :func:`split_groups`) of an
inlined value: a consumer that evaluates scalars point by point (another inlinable op, a
reduction, ``concat``, ``pad``) recomputes them through indexing maps instead of reading a
buffer. Such a value is *materialized* (gets a buffer and a kernel of its own) only when

* it is a function result,
* a consumer cannot inline it (matmul, conv, pooling, gather, softmax, arg-reductions and
  reshapes other than splits read buffers), or
* several consumers use it and recomputing it in each would cost more than
  :data:`RECOMPUTE_LIMIT` scalar ops, or
* its inlined tree has grown past :data:`MAX_FUSED_OPS` ops (kernel bodies stay a size a
  target compiles quickly; long chains are cut into several kernels).

Every other op always produces a buffer; a reshape that is not inlined aliases its operand's
buffer. Each materialized inlinable value is the *root* of a
parallel kernel; its *tree* is everything inlined into it. Epilogue fusion then lets the root of
a tree absorb one producer that only it reads, when the producer is a named kernel (matmul,
conv, pooling, gather, softmax) or a reduction whose result the tree reads point for point
(identity map, same shape): the producer's kernel stores the root's value instead of its own,
and the producer's buffer disappears.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hal_core.compiler.kernel_ir import AffineExpr, IndexingMap
from hal_core.compiler.passes.folding import splat_value
from hal_core.ir.module import Function, Operation, Value
from hal_core.ir.opdefs import OPS
from hal_core.ir.opdefs_table import slice_params

RECOMPUTE_LIMIT = 6
MAX_FUSED_OPS = 64

ELEMENTWISE = frozenset(n for n, d in OPS.items() if d.category == "elementwise")
INLINABLE = ELEMENTWISE | {"expand", "transpose", "slice"}
REDUCTIONS = frozenset({"reduce_sum", "reduce_prod", "reduce_max", "reduce_min",
                        "reduce_mean"})
#: Consumers that evaluate their operands point by point, so inlinable producers fuse in.
INLINING_CONSUMERS = INLINABLE | REDUCTIONS | {"concat", "pad"}
#: Producers whose kernel can take an elementwise epilogue.
NAMED_WITH_EPILOGUE = frozenset({"matmul", "conv2d", "max_pool2d", "avg_pool2d",
                                 "global_max_pool2d", "global_avg_pool2d", "gather",
                                 "softmax", "log_softmax"})
EPILOGUE_PRODUCERS = NAMED_WITH_EPILOGUE | REDUCTIONS


def split_groups(old: tuple[int, ...], new: tuple[int, ...]) -> list[list[int]] | None:
    """For a reshape ``old -> new`` that only splits dims (row-major layout kept, each old dim
    becomes a run of new dims whose sizes multiply to it), the new dims of each old dim;
    None for any other reshape (merges, regroupings, empty tensors).

    Size-1 dims carry no coordinate: an old one gets no new dims, a new one joins no group.
    """
    if 0 in old or 0 in new:
        return None
    rest = [j for j, n in enumerate(new) if n != 1]
    groups: list[list[int]] = []
    for size in old:
        group: list[int] = []
        while size > 1 and rest and new[rest[0]] <= size and size % new[rest[0]] == 0:
            size //= new[rest[0]]
            group.append(rest.pop(0))
        if size != 1:
            return None
        groups.append(group)
    return None if rest else groups


def _split_map(m: IndexingMap, groups: list[list[int]], new: tuple[int, ...]) -> IndexingMap:
    """Where a split reshape read at ``m`` reads its operand: each old coordinate is its
    group's new coordinates weighted by their row-major strides within the group."""
    exprs = []
    for group in groups:
        coeffs, const, stride = [0] * m.num_dims, 0, 1
        for j in reversed(group):
            e = m.exprs[j]
            coeffs = [a + stride * c for a, c in zip(coeffs, e.coeffs)]
            const += stride * e.constant
            stride *= new[j]
        exprs.append(AffineExpr(tuple(coeffs), const))
    return IndexingMap(m.num_dims, tuple(exprs))


def is_split_reshape(op: Operation) -> bool:
    return op.name == "reshape" and split_groups(op.operands[0].type.shape,
                                                 op.type.shape) is not None


def broadcast_map(m: IndexingMap, out_shape: tuple[int, ...],
                  shape: tuple[int, ...]) -> IndexingMap:
    """Map for an operand of ``shape`` broadcast (numpy rules) to ``out_shape``."""
    lead = len(out_shape) - len(shape)
    zero = AffineExpr.const(0, m.num_dims)
    return IndexingMap(m.num_dims, tuple(
        zero if d == 1 else m.exprs[lead + j] for j, d in enumerate(shape)))


def canonical(m: IndexingMap, shape: tuple[int, ...]) -> IndexingMap:
    """``m`` with every size-1 dim of the operand read at constant 0 (all points agree)."""
    zero = AffineExpr.const(0, m.num_dims)
    return IndexingMap(m.num_dims, tuple(zero if d == 1 else e
                                         for e, d in zip(m.exprs, shape)))


def operand_maps(op: Operation, m: IndexingMap) -> list[IndexingMap]:
    """For an inlinable op read at ``m``, where each of its operands is read."""
    out_shape = op.type.shape
    if op.name in ELEMENTWISE or op.name == "expand":
        return [broadcast_map(m, out_shape, v.type.shape) for v in op.operands]
    if op.name == "transpose":
        exprs: list[AffineExpr | None] = [None] * len(out_shape)
        for i, p in enumerate(op.attrs["perm"]):
            exprs[p] = m.exprs[i]
        return [IndexingMap(m.num_dims, tuple(exprs))]  # type: ignore[arg-type]
    if op.name == "slice":
        a = op.attrs
        params = slice_params(op.operands[0].type.shape, a["starts"], a["ends"], a["steps"])
        return [IndexingMap(m.num_dims, tuple(
            AffineExpr(tuple(step * c for c in e.coeffs), step * e.constant + first)
            for e, (first, step, _) in zip(m.exprs, params)))]
    if op.name == "reshape":
        groups = split_groups(op.operands[0].type.shape, out_shape)
        if groups is not None:
            return [_split_map(m, groups, out_shape)]
    raise AssertionError(f"operand_maps: {op.name} is not inlinable")


def is_splat_constant(op: Operation) -> bool:
    """A constant kernels take as a scalar (``Const``) rather than read from a buffer."""
    return op.type.size == 0 or splat_value(op) is not None


@dataclass
class FusionPlan:
    """What dispatch formation needs to know about one function."""

    producers: dict[str, Operation]          # value name -> defining op
    uses: dict[str, list[Operation]]         # value name -> consuming ops
    materialized: set[str]                   # inlinable values that get a buffer
    #: root value name (a materialized inlinable value) -> the producer op it absorbs
    epilogue_of: dict[str, Operation] = field(default_factory=dict)
    absorbed: set[str] = field(default_factory=set)  # producer results not stored
    #: split reshapes of inlined values: inlinable ops here (the others alias their operand)
    split_reshapes: set[str] = field(default_factory=set)

    def inlinable(self, op: Operation) -> bool:
        return op.name in INLINABLE or op.result.name in self.split_reshapes

    def inlined(self, v: Value) -> bool:
        """Whether ``v`` is computed inside its consumers' kernels (no buffer)."""
        op = self.producers.get(v.name)
        if op is None:
            return False
        if op.name == "constant":
            return v.name not in self.materialized and is_splat_constant(op)
        return self.inlinable(op) and v.name not in self.materialized

    def leaves(self, v: Value, m: IndexingMap, root: bool = False
               ) -> list[tuple[Value, IndexingMap]]:
        """Buffers read (with their maps) when ``v`` is evaluated at ``m`` inside a kernel;
        ``root``: ``v`` is the value the kernel computes (so it is expanded, not read)."""
        out: list[tuple[Value, IndexingMap]] = []
        seen: set[tuple[str, IndexingMap]] = set()

        def walk(v: Value, m: IndexingMap, top: bool = False) -> None:
            if (v.name, m) in seen:
                return
            seen.add((v.name, m))
            if not top and not self.inlined(v):
                out.append((v, canonical(m, v.type.shape)))
                return
            op = self.producers[v.name]
            if op.name != "constant":
                for o, om in zip(op.operands, operand_maps(op, m)):
                    walk(o, om)

        walk(v, m, root)
        return out


def plan_fusion(fn: Function) -> FusionPlan:
    producers = {op.result.name: op for op in fn.body}
    uses: dict[str, list[Operation]] = {}
    for op in fn.body:
        for v in op.operands:
            uses.setdefault(v.name, []).append(op)
    results = {v.name for v in fn.results}
    plan = FusionPlan(producers, uses, set())
    cost: dict[str, int] = {}
    for op in fn.body:
        name = op.result.name
        consumers = uses.get(name, [])
        needs_buffer = name in results or any(
            u.name not in INLINING_CONSUMERS and not is_split_reshape(u) for u in consumers)
        if op.name == "constant":
            if is_splat_constant(op) and needs_buffer:
                plan.materialized.add(name)  # dense constants live in CONSTANT slots
            continue
        if is_split_reshape(op) and plan.inlined(op.operands[0]):
            plan.split_reshapes.add(name)
        if not plan.inlinable(op):
            continue
        cost[name] = int(op.name != "reshape") + sum(cost.get(v.name, 0) for v in op.operands
                             if plan.inlined(v))
        if (needs_buffer or cost[name] >= MAX_FUSED_OPS
                or (len(consumers) > 1 and cost[name] > RECOMPUTE_LIMIT)):
            if name in plan.split_reshapes:
                # Store the operand and alias the reshape to it, as for any reshape: the
                # operand's kernel then keeps its own shape, so it can still absorb a producer.
                plan.split_reshapes.discard(name)
                plan.materialized.add(op.operands[0].name)
            else:
                plan.materialized.add(name)
    _fuse_epilogues(fn, plan, results)
    return plan


def _fuse_epilogues(fn: Function, plan: FusionPlan, results: set[str]) -> None:
    readers: dict[str, set[str]] = {}   # buffer value -> names of the kernels reading it
    trees: dict[str, list[tuple[Value, IndexingMap]]] = {}
    for op in fn.body:
        name = op.result.name
        rank = op.type.rank
        if plan.inlinable(op) or op.name == "constant":
            if name not in plan.materialized:
                continue
            read = trees[name] = plan.leaves(op.result, IndexingMap.identity(rank), True) \
                if op.name != "constant" else []
        elif op.name in REDUCTIONS:
            src = op.operands[0]
            read = plan.leaves(src, IndexingMap.identity(src.type.rank))
        elif op.name in ("concat", "pad"):
            read = [leaf for v in op.operands
                    for leaf in plan.leaves(v, IndexingMap.identity(v.type.rank))]
        else:
            read = [(v, IndexingMap.identity(v.type.rank)) for v in op.operands]
        for v, _ in read:
            readers.setdefault(v.name, set()).add(name)
    for v in fn.results:
        readers.setdefault(v.name, set()).add("<return>")
    for root, leaves in trees.items():
        rtype = plan.producers[root].type
        ident = canonical(IndexingMap.identity(rtype.rank), rtype.shape)
        for v, _ in leaves:
            p = plan.producers.get(v.name)
            if (p is None or p.name not in EPILOGUE_PRODUCERS or v.name in results
                    or v.name in plan.absorbed or readers.get(v.name) != {root}
                    or v.type.shape != rtype.shape
                    or any(lv == v and lm != ident for lv, lm in leaves)):
                continue
            if p.name in NAMED_WITH_EPILOGUE and v.type.dtype != rtype.dtype:
                continue  # named kernels store their own dtype
            plan.epilogue_of[root] = p
            plan.absorbed.add(v.name)
            break
