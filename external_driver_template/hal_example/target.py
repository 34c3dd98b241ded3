"""The example target backend: kernel IR in, one ``example-program`` variant out.

Lowering a kernel is three steps, each one a thing a real accelerator backend does too:

1. Bring the kernel to a form the hardware runs. The example device runs loop nests
   (stages), so a named :class:`~hal_core.compiler.kernel_ir.MatmulKernel` is rewritten as a
   GenericKernel with a reduction dim, and a SoftmaxKernel becomes three stages that pass the
   row maxima and sums through dispatch scratch memory. The other named kernels are declined
   with UnsupportedKernelError, and hal keeps another target's variant for them when the
   module is compiled for several targets.
2. Fold each operand's affine indexing map and its row-major layout into an access descriptor
   (a byte offset and a byte stride per iteration dim), which is what the device's address
   generator consumes.
3. Choose the tiling: one parallel dim is split into workgroups small enough that a
   workgroup's temporaries stay within :data:`TILE_ELEMENTS` elements.
"""

from __future__ import annotations

import logging
import math

from hal_core.compiler import kernel_ir as K
from hal_core.compiler.target import TargetBackend, TargetOptions
from hal_core.errors import CompileError, UnsupportedKernelError
from hal_core.module.model import ExecutionModel, Variant, VariantEntryPoint
from hal_example import FORMAT, NAME
from hal_example.program import Access, Body, ProgramKernel, Stage, encode

log = logging.getLogger(__name__)

#: Upper bound on the iteration points one workgroup evaluates at once.
TILE_ELEMENTS = 1 << 18
#: The device feature a variant needs when it computes in float64.
FLOAT64_FEATURE = f"{NAME}:float64"


class ExampleTarget(TargetBackend):
    name = NAME

    def compile(self, executable: K.KernelExecutable, options: TargetOptions) -> Variant:
        if options.options:
            raise CompileError(f"target {NAME} has no options, got "
                               f"{', '.join(sorted(options.options))}; remove them")
        if options.execution_model is ExecutionModel.INLINE:
            raise CompileError(f"target {NAME} produces executables for the {NAME} device's "
                               f"queue; the inline execution model runs kernels on the host "
                               f"CPU: compile with --execution-model=async")
        if not executable.kernels:
            raise CompileError(f"executable {executable.name!r} has no kernels to compile")
        lowered = [lower_kernel(k) for k in executable.kernels]
        uses_f64 = any(_uses_float64(k) for k in lowered)
        entry_points = tuple(
            VariantEntryPoint(name=k.name, workgroup_count=(p.workgroups, 1, 1),
                              binding_count=K.binding_count(k))
            for k, p in zip(executable.kernels, lowered))
        payload = encode(lowered)
        log.debug("%s: %s -> %d kernels, %d bytes", NAME, executable.name, len(lowered),
                  len(payload))
        return Variant(target_backend=NAME, format=FORMAT,
                       features=(FLOAT64_FEATURE,) if uses_f64 else (),
                       entry_points=entry_points, payload=payload)


def create_target() -> ExampleTarget:
    return ExampleTarget()


# -- 1. named kernels -> generic ---------------------------------------------------------------


def lower_kernel(kernel: K.Kernel) -> ProgramKernel:
    """``kernel`` as a ProgramKernel, or UnsupportedKernelError."""
    K.validate(kernel)
    if isinstance(kernel, K.GenericKernel):
        return tiled(kernel.name, (lower(kernel),))
    if isinstance(kernel, K.MatmulKernel):
        generic = matmul_as_generic(kernel)
        K.validate(generic)
        return tiled(kernel.name, (lower(generic),))
    if isinstance(kernel, K.SoftmaxKernel) and kernel.input.dtype in K.FLOAT_DTYPES:
        return softmax_program(kernel)
    raise UnsupportedKernelError(
        f"target {NAME} cannot compile kernel {kernel.name!r} ({type(kernel).__name__}): the "
        f"{NAME} device runs generic loop nests, matmul and softmax only; compile for a second "
        f"target too (e.g. --target-backends={NAME},vmvx) so another device can run it")


def _dtype_of(ref: K.ValueRef, body: tuple[K.ScalarOp, ...], inputs: tuple[K.MappedOperand, ...],
              acc: str) -> str:
    if isinstance(ref, K.Result):
        return body[ref.index].dtype
    if isinstance(ref, K.Input):
        return inputs[ref.index].operand.dtype
    if isinstance(ref, K.Const):
        return ref.dtype
    if isinstance(ref, K.Acc):
        return acc
    return "int64"  # IterIndex


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
        if _dtype_of(y, k.epilogue.body, k.epilogue.inputs, acc) != k.out.dtype:
            ebody.append(K.ScalarOp("cast", (y,), k.out.dtype))
            y = K.Result(len(ebody) - 1)
        finalize = K.Epilogue(tuple(ebody), (y,), inputs)
    elif acc != k.out.dtype:
        finalize = K.Epilogue((K.ScalarOp("cast", (K.Acc(0),), k.out.dtype),), (K.Result(0),))
    return K.GenericKernel(k.name, (*batch, k.mnk[0], k.mnk[1], k.mnk[2]),
                           ("parallel",) * (nb + 2) + ("reduction",), (lhs, rhs), (out,),
                           tuple(body), (K.Result(len(body) - 1),), ("sum",), finalize)


# -- 2. indexing maps -> access descriptors; 3. tiling ------------------------------------------


def access(mapped: K.MappedOperand) -> Access:
    """Fold ``mapped``'s indexing map and row-major layout into byte offset and strides."""
    op = mapped.operand
    size = K.DTYPES[op.dtype]
    row = [math.prod(op.shape[j + 1:]) for j in range(len(op.shape))]
    offset = op.byte_offset + size * sum(r * e.constant for r, e in zip(row, mapped.map.exprs))
    strides = tuple(size * sum(r * e.coeffs[d] for r, e in zip(row, mapped.map.exprs))
                    for d in range(mapped.map.num_dims))
    return Access(op.binding, op.dtype, offset, strides)


def _ref(ref: K.ValueRef) -> tuple:
    if isinstance(ref, K.Input):
        return ("in", ref.index)
    if isinstance(ref, K.Result):
        return ("val", ref.index)
    if isinstance(ref, K.IterIndex):
        return ("idx", ref.dim)
    if isinstance(ref, K.Acc):
        return ("acc", ref.index)
    value = ref.value
    return ("const", int(value) if isinstance(value, bool) else value, ref.dtype)


def _code(body: tuple[K.ScalarOp, ...]) -> tuple[tuple, ...]:
    return tuple((op.opcode, op.dtype, *(_ref(a) for a in op.args)) for op in body)


def lower(k: K.GenericKernel) -> Stage:
    """One GenericKernel as one stage."""
    reduce = tuple(d for d, t in enumerate(k.iterator_types) if t == "reduction")
    mapped = [*k.inputs, *k.outputs, *(k.finalize.inputs if k.finalize else ())]
    n_in, n_out = len(k.inputs), len(k.outputs)
    body = Body(tuple(range(n_in)), _code(k.body), tuple(_ref(y) for y in k.yields))
    final = None
    if k.finalize is not None:
        final = Body(tuple(range(n_in + n_out, len(mapped))), _code(k.finalize.body),
                     tuple(_ref(y) for y in k.finalize.yields))
    combiners = tuple(k.combiners) if reduce else (None,) * n_out
    return Stage(tuple(k.iteration_space), reduce, tuple(access(m) for m in mapped),
                 tuple(range(n_in, n_in + n_out)), body, combiners, final)


def tiled(name: str, stages: tuple[Stage, ...], scratch: tuple[int, ...] = ()) -> ProgramKernel:
    """The kernel of ``stages``, split into workgroups along a dim parallel in all of them."""
    space = stages[0].space
    parallel = [d for d in range(len(space))
                if all(d < len(st.space) and d not in st.reduce for st in stages)]
    tile_dim = next((d for d in parallel if space[d] > 1), parallel[0] if parallel else None)
    tile = 1
    if tile_dim is not None:
        per_point = max(max(1, math.prod(n for d, n in enumerate(st.space) if d != tile_dim))
                        for st in stages)
        tile = max(1, min(space[tile_dim], TILE_ELEMENTS // per_point))
    return ProgramKernel(name, tile_dim, tile, scratch, stages)


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
        base = len(code)

        def moved(ref: K.ValueRef) -> tuple:
            if isinstance(ref, K.Acc):
                return result
            if isinstance(ref, K.Input):
                return ("in", 3 + ref.index)
            if isinstance(ref, K.Result):
                return ("val", base + ref.index)
            return _ref(ref)

        code += [(op.opcode, op.dtype, *(moved(a) for a in op.args)) for op in k.epilogue.body]
        y = k.epilogue.yields[0]
        result = moved(y)
        if _dtype_of(y, k.epilogue.body, epi_inputs, out.dtype) != out.dtype:
            code.append(("cast", out.dtype, result))
            result = ("val", len(code) - 1)
    outa = access(K.MappedOperand(out, K.IndexingMap.identity(rank)))
    operands = (xa, m, s, *(access(e) for e in epi_inputs), outa)
    final_stage = Stage(shape, (), operands, (len(operands) - 1,),
                        Body(tuple(range(len(operands) - 1)), tuple(code), (result,)), (None,),
                        None)
    nbytes = size * math.prod(reduced)
    return tiled(k.name, (max_stage, sum_stage, final_stage), (nbytes, nbytes))


def _uses_float64(k: ProgramKernel) -> bool:
    return any(any(a.dtype == "float64" for a in st.operands)
               or any(op[1] == "float64" for b in (st.body, st.final) if b for op in b.code)
               for st in k.stages)
