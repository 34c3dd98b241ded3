"""Dispatch formation: a fused tensor-IR function becomes a sequence of kernel IR kernels.

Each :class:`KernelStep` is one dispatch: a kernel whose binding ``i`` is the storage of
``buffers[i]`` (a tensor-IR value; reshapes share their source's storage, or are inlined as
maps where fusion made them inlinable). How each op is expressed follows :mod:`hal_core.compiler.kernel_ir`'s docstring: maps
for broadcasts, transposes and slices, offset windows for concat, a fill kernel plus an interior
copy for pad, named kernels for matmul/conv/pooling/arg-reductions/gather/softmax, reductions
with reduction iterators (mean = sum + finalize). Kernels whose outputs are empty are dropped.
Consecutive parallel kernels over one iteration space that do not read each other's results
become one kernel with several outputs (one dispatch, one pass over shared inputs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from hal_core.compiler import kernel_ir as K
from hal_core.compiler.passes.fusion import (
    NAMED_WITH_EPILOGUE,
    REDUCTIONS,
    FusionPlan,
    is_splat_constant,
)
from hal_core.compiler.passes.scalar import Bindings, BodyBuilder, py_scalar
from hal_core.errors import CompileError
from hal_core.ir.module import Function, Operation, Value
from hal_core.ir.opdefs import normalize_axis
from hal_core.ir.opdefs_table import reduce_axes
from hal_core.ir.verifier import op_context

#: A splat constant that must be a buffer is stored in the module as bytes up to this size;
#: a bigger one as its element and size (``Constant.splat``), filled once at load.
SPLAT_BYTES = 4096
#: Consecutive independent parallel kernels over one iteration space are merged into one
#: kernel with several outputs, up to this many.
MAX_OUTPUTS = 8


@dataclass(frozen=True)
class KernelStep:
    kernel: K.Kernel
    buffers: tuple[Value, ...]      # binding i -> storage value
    writes: frozenset[int]          # bindings the kernel writes
    window: str | None = None       # steps with one tag write disjoint parts of one buffer
    ops: tuple[str, ...] = ()       # result names of the tensor-IR ops it computes


@dataclass
class FunctionDispatches:
    function: Function
    steps: list[KernelStep] = field(default_factory=list)
    alias: dict[str, Value] = field(default_factory=dict)   # reshape result -> storage value
    constants: dict[str, Operation] = field(default_factory=dict)  # dense constants by name

    def storage_of(self, v: Value) -> Value:
        return self.alias.get(v.name, v)


def form_dispatches(fn: Function, plan: FusionPlan) -> FunctionDispatches:
    fd = FunctionDispatches(fn)
    former = _Former(fn, plan, fd)
    for op in [*fn.body, None]:
        try:
            former.op(op) if op is not None else former.flush()
        except CompileError:
            raise
        except Exception as exc:  # a compiler bug: still name the op that triggered it
            where = op_context(fn, op) if op is not None else f"in @{fn.name}"
            raise CompileError(f"{where}: internal compiler error while forming dispatches:"
                               f" {type(exc).__name__}: {exc}; please report it") from exc
    return fd


def _acc_dtype(dt: str) -> str:
    return "float32" if dt == "float16" else dt


class _Former:
    def __init__(self, fn: Function, plan: FusionPlan, fd: FunctionDispatches) -> None:
        self.fn, self.plan, self.fd = fn, plan, fd
        self.pending: list[Operation] = []  # parallel roots waiting to share one kernel

    def op(self, op: Operation) -> None:
        name = op.result.name
        if op.name == "constant":
            if not is_splat_constant(op) or (
                    name in self.plan.materialized and op.type.byte_size > 0):
                self.fd.constants[name] = op
            elif name in self.plan.materialized:
                self._elementwise_root(op)  # an empty one
        elif op.name == "reshape" and not self.plan.inlinable(op):
            self.fd.alias[name] = self.fd.storage_of(op.operands[0])
        elif name in self.plan.absorbed:
            pass  # computed by the kernel of the root that absorbs it
        elif self.plan.inlinable(op):
            if name in self.plan.materialized:
                self._elementwise_root(op)
        elif op.name in REDUCTIONS:
            self._reduction(op, None)
        elif op.name in ("concat", "pad"):
            self._concat(op) if op.name == "concat" else self._pad(op)
        elif op.name in NAMED_WITH_EPILOGUE or op.name in ("argmax", "argmin"):
            self._named(op, None)
        else:
            raise CompileError(f"{op_context(self.fn, op)}: the compiler has no lowering for"
                               f" op '{op.name}'")

    def _add(self, kernel: K.Kernel, b: Bindings, label: str, ops: tuple[str, ...],
             window: str | None = None) -> None:
        import dataclasses

        self.flush()  # pending parallel roots come first: they are earlier in the program
        name = f"{self.fn.name}_dispatch_{len(self.fd.steps)}_{label}"
        kernel = dataclasses.replace(kernel, name=name)
        consts = {i for i, v in enumerate(b.values) if v.name in self.fd.constants}
        if consts:  # module constants: a target may pack them once at load
            kernel = K.replace_operands(kernel, lambda o: dataclasses.replace(o, constant=True)
                                        if o.binding in consts else o)
        self.fd.steps.append(KernelStep(kernel, tuple(b.values), frozenset(b.written),
                                        window, ops))

    # -- parallel kernels of inlined trees ------------------------------------------------------

    def _elementwise_root(self, op: Operation) -> None:
        if op.type.size == 0:
            return
        producer = self.plan.epilogue_of.get(op.result.name)
        if producer is not None:
            if producer.name in REDUCTIONS:
                self._reduction(producer, op)
            else:
                self._named(producer, op)
            return
        if self.pending and not self._joins(op):
            self.flush()
        self.pending.append(op)

    def _joins(self, op: Operation) -> bool:
        """Whether ``op`` can share a kernel with the pending roots: same iteration space,
        and it reads none of their results (they are stored by the same dispatch)."""
        if op.type.shape != self.pending[0].type.shape or len(self.pending) >= MAX_OUTPUTS:
            return False
        written = {self.fd.storage_of(p.result).name for p in self.pending}
        ident = K.IndexingMap.identity(op.type.rank)
        reads = [] if op.name == "constant" else self.plan.leaves(op.result, ident, True)
        return not any(self.fd.storage_of(v).name in written for v, _ in reads)

    def flush(self) -> None:
        """One parallel kernel computing every pending root (several outputs, one pass)."""
        roots, self.pending = self.pending, []
        if not roots:
            return
        b = Bindings(self.fd.storage_of)
        rank = roots[0].type.rank
        ident = K.IndexingMap.identity(rank)
        bb = BodyBuilder(self.plan, rank, b)
        ys = tuple(bb.constant(op) if op.name == "constant" else
                   bb.value(op.result, ident, root=True) for op in roots)
        outs = tuple(K.MappedOperand(b.operand(op.result, written=True), ident)
                     for op in roots)
        kernel = K.GenericKernel("", roots[0].type.shape, ("parallel",) * rank,
                                 tuple(bb.inputs), outs, tuple(bb.body), ys)
        self._add(kernel, b, "_".join(op.name for op in roots),
                  tuple(op.result.name for op in roots))

    def _epilogue(self, b: Bindings, producer: Operation, root: Operation,
                  acc_dtype: str) -> K.Epilogue:
        pdt = producer.type.numpy_dtype
        bb = BodyBuilder(self.plan, root.type.rank, b,
                         acc=(producer.result, lambda fb: fb.cast(K.Acc(0), acc_dtype, pdt)))
        y = bb.value(root.result, K.IndexingMap.identity(root.type.rank), root=True)
        return bb.epilogue((y,))

    # -- reductions -----------------------------------------------------------------------------

    def _reduction(self, op: Operation, root: Operation | None) -> None:
        stored = root or op
        if stored.type.size == 0:
            return
        src = op.operands[0]
        shape, n = src.type.shape, src.type.rank
        axes = reduce_axes(n, op.attrs["axes"])
        keep = op.attrs["keepdims"]
        kind = op.name[len("reduce_"):]
        src_dt, out_dt = src.type.numpy_dtype, op.type.numpy_dtype
        acc_dt = _acc_dtype(src_dt)
        b = Bindings(self.fd.storage_of)
        bb = BodyBuilder(self.plan, n, b)
        y = bb.cast(bb.value(src, K.IndexingMap.identity(n)), src_dt, acc_dt)
        # output dim j <- iteration dim it_of[j] (None: a kept size-1 reduced dim)
        it_of = [None if d in axes else d for d in range(n)] if keep else \
            [d for d in range(n) if d not in axes]
        out_map = K.IndexingMap.of_dims(n, tuple(it_of))
        count = math.prod(shape[a] for a in axes)

        def finish(fb: BodyBuilder) -> K.ValueRef:
            r: K.ValueRef = K.Acc(0)
            if kind == "mean":
                r = fb.emit("div", (r, K.Const(float(count), acc_dt)), acc_dt)
            return fb.cast(r, acc_dt, out_dt)

        finalize = None
        if root is not None:
            fb = BodyBuilder(self.plan, root.type.rank, b, acc=(op.result, finish))
            yv = fb.value(root.result, K.IndexingMap.identity(root.type.rank), root=True)
            finalize = K.Epilogue(tuple(fb.body), (yv,), tuple(
                K.MappedOperand(m.operand, _remap(m.map, it_of, n)) for m in fb.inputs))
        elif kind == "mean" or acc_dt != out_dt:
            fb = BodyBuilder(self.plan, n, b)
            finalize = fb.epilogue((finish(fb),))
        out = K.MappedOperand(b.operand(stored.result, written=True), out_map)
        iters = tuple("reduction" if d in axes else "parallel" for d in range(n))
        combiner = {"sum": "sum", "mean": "sum", "prod": "prod", "max": "max", "min": "min"}[kind]
        kernel = K.GenericKernel("", shape, iters, tuple(bb.inputs), (out,), tuple(bb.body),
                                 (y,), (combiner,), finalize)
        label = op.name + (f"_{root.name}" if root is not None else "")
        ops = (op.result.name,) + ((root.result.name,) if root is not None else ())
        self._add(kernel, b, label, ops)

    # -- concat and pad -------------------------------------------------------------------------

    def _window_copy(self, v: Value, out: Operation, offsets: tuple[int, ...]) -> tuple:
        b = Bindings(self.fd.storage_of)
        rank = v.type.rank
        bb = BodyBuilder(self.plan, rank, b)
        y = bb.value(v, K.IndexingMap.identity(rank))
        omap = K.IndexingMap(rank, tuple(K.AffineExpr.dim(d, rank, 1, offsets[d])
                                         for d in range(rank)))
        o = K.MappedOperand(b.operand(out.result, written=True), omap)
        kernel = K.GenericKernel("", v.type.shape, ("parallel",) * rank, tuple(bb.inputs),
                                 (o,), tuple(bb.body), (y,))
        return kernel, b

    def _concat(self, op: Operation) -> None:
        if op.type.size == 0:
            return
        axis = normalize_axis(op.attrs["axis"], op.type.rank)
        start = 0
        for v in op.operands:
            if v.type.size:
                offsets = tuple(start if d == axis else 0 for d in range(op.type.rank))
                kernel, b = self._window_copy(v, op, offsets)
                self._add(kernel, b, "concat", (op.result.name,), f"concat:{op.result.name}")
            start += v.type.shape[axis]

    def _pad(self, op: Operation) -> None:
        if op.type.size == 0:
            return
        import numpy as np

        dt, rank = op.type.numpy_dtype, op.type.rank
        value = np.asarray(op.attrs["value"]).astype(dt).item()
        b = Bindings(self.fd.storage_of)
        out = K.MappedOperand(b.operand(op.result, written=True), K.IndexingMap.identity(rank))
        fill = K.GenericKernel("", op.type.shape, ("parallel",) * rank, (), (out,), (),
                               (K.Const(py_scalar(value, dt), dt),))
        self._add(fill, b, "pad_fill", (op.result.name,))
        src = op.operands[0]
        if src.type.size:
            kernel, b = self._window_copy(src, op, tuple(op.attrs["low"]))
            self._add(kernel, b, "pad_copy", (op.result.name,))

    # -- named kernels --------------------------------------------------------------------------

    def _named(self, op: Operation, root: Operation | None) -> None:
        stored = root or op
        if stored.type.size == 0:
            return
        b = Bindings(self.fd.storage_of)
        ins = [b.operand(v) for v in op.operands]
        a = op.attrs
        dt = op.type.numpy_dtype
        acc = _acc_dtype(dt) if op.name in ("matmul", "conv2d") else dt
        epi = self._epilogue(b, op, root, acc) if root is not None else None
        out = b.operand(stored.result, written=True)
        rank = op.operands[0].type.rank
        if op.name == "matmul":
            kernel: K.Kernel = K.MatmulKernel(
                "", ins[0], ins[1], out, a["transpose_a"], a["transpose_b"],
                None if acc == dt else acc, epi)
        elif op.name == "conv2d":
            kernel = K.Conv2dKernel(
                "", ins[0], ins[1], out, ins[2] if len(ins) > 2 else None,
                tuple(a["strides"]), tuple(a["padding"]), tuple(a["dilations"]),
                a["groups"], None if acc == dt else acc, epi)
        elif op.name in ("max_pool2d", "avg_pool2d"):
            kernel = K.Pool2dKernel(
                "", ins[0], out, op.name[:3], tuple(a["kernel"]), tuple(a["strides"]),
                tuple(a["padding"]), bool(a.get("count_include_pad", False)), epi)
        elif op.name in ("global_max_pool2d", "global_avg_pool2d"):
            kind = op.name[len("global_"):len("global_") + 3]
            kernel = K.Pool2dKernel("", ins[0], out, kind, op.operands[0].type.shape[2:],
                                    epilogue=epi)
        elif op.name in ("argmax", "argmin"):
            kernel = K.ArgReduceKernel("", ins[0], out, normalize_axis(a["axis"], rank),
                                       op.name)
        elif op.name == "gather":
            kernel = K.GatherKernel("", ins[0], ins[1], out, normalize_axis(a["axis"], rank),
                                    epi)
        else:
            kernel = K.SoftmaxKernel("", ins[0], out, normalize_axis(a["axis"], rank),
                                     op.name == "log_softmax", epi)
        label = op.name + (f"_{root.name}" if root is not None else "")
        ops = (op.result.name,) + ((root.result.name,) if root is not None else ())
        self._add(kernel, b, label, ops)


def _remap(m: K.IndexingMap, it_of: list[int | None], n: int) -> K.IndexingMap:
    """A map over a reduction's output dims, re-expressed over its iteration dims."""
    exprs = []
    for e in m.exprs:
        coeffs = [0] * n
        for j, c in enumerate(e.coeffs):
            if it_of[j] is not None:
                coeffs[it_of[j]] += c  # type: ignore[index]
        exprs.append(K.AffineExpr(tuple(coeffs), e.constant))
    return K.IndexingMap(n, tuple(exprs))
