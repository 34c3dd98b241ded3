"""Readable text of the compiler's intermediate stages (``hal compile --dump-ir``).

Kernel IR prints as, for example::

    kernel main_dispatch_0_add: generic space=[4, 4] iterators=[parallel, parallel]
      in0  = b0[4x4 float32] (d0, d1) -> (d0, d1)
      out0 = b2[4x4 float32] (d0, d1) -> (d0, d1)
      %0 = add in0, in1 : float32
      yield %0
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hal_core.compiler import kernel_ir as K
from hal_core.module import model as M


def format_expr(e: K.AffineExpr) -> str:
    terms = [f"d{i}" if c == 1 else f"-d{i}" if c == -1 else f"{c}*d{i}"
             for i, c in enumerate(e.coeffs) if c]
    if e.constant or not terms:
        terms.append(str(e.constant))
    return " + ".join(terms).replace("+ -", "- ")


def format_map(m: K.IndexingMap) -> str:
    dims = ", ".join(f"d{i}" for i in range(m.num_dims))
    return f"({dims}) -> ({', '.join(format_expr(e) for e in m.exprs)})"


def format_operand(op: K.KernelOperand) -> str:
    shape = "x".join(map(str, op.shape)) or "scalar"
    offset = f"+{op.byte_offset}" if op.byte_offset else ""
    return f"b{op.binding}{offset}[{shape} {op.dtype}]"


def _ref(r: Any) -> str:
    if isinstance(r, K.Input):
        return f"in{r.index}"
    if isinstance(r, K.Result):
        return f"%{r.index}"
    if isinstance(r, K.Const):
        return f"{r.value!r}:{r.dtype}"
    if isinstance(r, K.IterIndex):
        return f"d{r.dim}"
    if isinstance(r, K.Acc):
        return f"acc{r.index}"
    return repr(r)


def _body(body: Sequence[K.ScalarOp], yields: Sequence[Any], indent: str) -> list[str]:
    lines = [f"{indent}%{i} = {op.opcode} {', '.join(_ref(a) for a in op.args)} : {op.dtype}"
             for i, op in enumerate(body)]
    lines.append(f"{indent}yield {', '.join(_ref(y) for y in yields)}")
    return lines


def _epilogue(title: str, epi: K.Epilogue | None) -> list[str]:
    if epi is None:
        return []
    lines = [f"  {title}:"]
    lines += [f"    in{i} = {format_operand(m.operand)} {format_map(m.map)}"
              for i, m in enumerate(epi.inputs)]
    return lines + _body(epi.body, epi.yields, "    ")


def format_kernel(k: K.Kernel) -> str:
    if isinstance(k, K.GenericKernel):
        lines = [(f"kernel {k.name}: generic space={list(k.iteration_space)} "
                  f"iterators=[{', '.join(k.iterator_types)}]")]
        lines += [f"  in{i} = {format_operand(m.operand)} {format_map(m.map)}"
                  for i, m in enumerate(k.inputs)]
        combiners = k.combiners or (None,) * len(k.outputs)
        lines += [f"  out{i} = {format_operand(m.operand)} {format_map(m.map)}"
                  + (f" combiner={c}" if c else "")
                  for i, (m, c) in enumerate(zip(k.outputs, combiners))]
        lines += _body(k.body, k.yields, "  ")
        return "\n".join(lines + _epilogue("finalize", k.finalize))
    fields = []
    for f in k.__dataclass_fields__:
        if f in ("name", "epilogue"):
            continue
        v = getattr(k, f)
        if v is None or v is False:
            continue
        fields.append(f"{f}={format_operand(v) if isinstance(v, K.KernelOperand) else v}")
    kind = type(k).__name__.removesuffix("Kernel").lower()
    lines = [f"kernel {k.name}: {kind}"] + [f"  {f}" for f in fields]
    return "\n".join(lines + _epilogue("epilogue", getattr(k, "epilogue", None)))


def format_kernels(executable: K.KernelExecutable) -> str:
    parts = [(f"// kernel executable {executable.name!r}: {len(executable.kernels)} kernels "
              "(kernel i = entry point i)")]
    parts += [f"// entry point {i}\n{format_kernel(k)}" for i, k in enumerate(executable.kernels)]
    return "\n\n".join(parts)


def format_ref(r: M.BufferRef) -> str:
    slot = r.slot.name.lower()
    where = slot if r.slot == M.Slot.TRANSIENT else f"{slot}{r.index}"
    return f"{where}[{r.offset}:{r.offset + r.length}]"


def format_function(fn: M.Function) -> str:
    sig = ", ".join(f"{t.shape}{t.dtype}" for t in fn.inputs)
    res = ", ".join(f"{t.shape}{t.dtype}" for t in fn.outputs)
    lines = [f"function {fn.name}({sig}) -> ({res})  transient={fn.transient_size} bytes"]
    for op in fn.program:
        if isinstance(op, M.Dispatch):
            binds = ", ".join(format_ref(b) for b in op.bindings)
            lines.append(f"  dispatch exe{op.executable}[{op.entry_point}] ({binds})")
        elif isinstance(op, M.Copy):
            lines.append(f"  copy {format_ref(op.source)} -> {format_ref(op.target)}")
        elif isinstance(op, M.Fill):
            lines.append(f"  fill {format_ref(op.target)} with 0x{op.pattern.hex()}")
        else:
            lines.append("  barrier")
    return "\n".join(lines)


def format_host(functions: Sequence[M.Function], plans: Sequence[Any] = ()) -> str:
    """Host programs and, given (dispatches, buffer plan) pairs, where each buffer lives."""
    out = []
    for i, fn in enumerate(functions):
        lines = [format_function(fn)]
        if i < len(plans):
            fd, bplan = plans[i]
            lines.append("  // buffer plan:")
            for name, ref in bplan.refs.items():
                life = bplan.lifetimes.get(name)
                when = f" live dispatches {life[0]}..{life[1]}" if life else ""
                lines.append(f"  //   %{name} -> {format_ref(ref)}{when}")
            lines += [f"  //   %{a} -> alias of %{v.name} (reshape)" for a, v in fd.alias.items()]
        out.append("\n".join(lines))
    return "\n\n".join(out)


def format_fusion(functions: Sequence[tuple[Any, Any]]) -> str:
    out = []
    for fn, plan in functions:
        lines = [f"@{fn.name}:"]
        for op in fn.body:
            name = op.result.name
            if name in plan.absorbed:
                how = "absorbed into the kernel of its consumer (epilogue)"
            elif name in plan.epilogue_of:
                how = f"kernel root; epilogue of %{plan.epilogue_of[name].result.name}"
            elif plan.inlined(op.result):
                how = "inlined into its consumers"
            elif op.name == "reshape":
                how = "alias of its operand"
            elif op.name == "constant":
                how = "module constant"
            else:
                how = "kernel root"
            lines.append(f"  %{name} = {op.name}: {how}")
        out.append("\n".join(lines))
    return "\n\n".join(out)
