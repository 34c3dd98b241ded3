"""One kernel -> one LLVM module -> object code, for a target triple and CPU.

Entry point ABI (documented in plugins/llvm-cpu/README.md)::

    int32_t entry(void **bindings, const uint32_t *constants,
                  const uint32_t workgroup_count[3], int64_t first, int64_t end);

runs workgroups ``[first, end)``; returns 0. The entry loads the binding pointers and calls
the kernel body, whose pointer arguments are ``noalias`` (bindings of one dispatch never
overlap).
"""

from __future__ import annotations

import functools
import re
import threading
from dataclasses import dataclass

from llvmlite import ir

from hal_core.compiler import kernel_ir as K
from hal_llvm_cpu.codegen import I32, I64, PTR, Func, UnsupportedKernelError

#: Bumped whenever generated code changes, so that cached objects of older code are not used.
CODEGEN_VERSION = "1"

_init_lock = threading.Lock()
_initialised = False


def init_llvm() -> None:
    global _initialised
    with _init_lock:
        if _initialised:
            return
        import llvmlite.binding as llvm

        # llvm.initialize() raises in llvmlite 0.45+; these are what is needed.
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        try:
            llvm.initialize_all_targets()
            llvm.initialize_all_asmprinters()
        except Exception:   # cross targets then are unavailable; the host still works
            pass
        _initialised = True


@dataclass(frozen=True)
class Machine:
    """What code is generated for."""

    triple: str
    cpu: str
    features: str        # LLVM feature string: "+avx2,+fma,..."

    @property
    def arch(self) -> str:
        a = self.triple.split("-", 1)[0]
        return {"amd64": "x86_64", "arm64": "aarch64"}.get(a, a)

    @property
    def vector_bits(self) -> int:
        on = set(enabled_features(self.features))
        if "avx512f" in on:
            return 512
        if "avx" in on or "avx2" in on:
            return 256
        return 128


def enabled_features(features: str) -> list[str]:
    return [x[1:] for x in features.split(",") if x.startswith("+")]


def plan(kernel: K.Kernel, machine: Machine) -> tuple[int, int]:
    """(workgroup count, work items per workgroup) the lowering of ``kernel`` uses."""
    from hal_llvm_cpu import conv, gemm, gemv, generic, named

    if isinstance(kernel, K.GenericKernel):
        return generic.plan(kernel)
    if gemv.applies(kernel):
        return gemv.plan(kernel, machine)
    if isinstance(kernel, K.MatmulKernel) and gemm.applies(kernel):
        return gemm.plan(kernel, machine)
    if isinstance(kernel, K.Conv2dKernel) and conv.conv_applies(kernel):
        return conv.conv_plan(kernel, machine)
    try:
        plan_fn, _ = named.LOWERINGS[type(kernel)]
    except KeyError:
        raise UnsupportedKernelError(
            f"llvm-cpu has no lowering for kernel {kernel.name!r} "
            f"({type(kernel).__name__})") from None
    return plan_fn(kernel)


def build_module(kernel: K.Kernel, symbol: str, machine: Machine) -> ir.Module:
    from hal_llvm_cpu import conv, gemm, gemv, generic, named, pool

    mod = ir.Module(name=symbol)
    mod.triple = machine.triple
    nb = K.binding_count(kernel)
    body = Func(mod, symbol + ".body", ir.VoidType(), [PTR] * nb + [I64, I64],
                linkage="internal", noalias=range(nb))
    ptrs, (first, end) = body.fn.args[:nb], body.fn.args[nb:]
    if isinstance(kernel, K.GenericKernel):
        generic.lower_generic(body, kernel, ptrs, first, end)
    elif gemv.applies(kernel):
        gemv.lower_gemv(body, kernel, ptrs, first, end, machine)
    elif isinstance(kernel, K.MatmulKernel) and gemm.applies(kernel):
        gemm.lower_matmul(body, kernel, ptrs, first, end, machine)
    elif isinstance(kernel, K.Conv2dKernel) and conv.conv_applies(kernel):
        conv.lower_conv2d(body, kernel, ptrs, first, end, machine)
    elif pool.applies(kernel):
        pool.lower_pool2d(body, kernel, ptrs, first, end, machine)
    else:
        plan(kernel, machine)   # raises UnsupportedKernelError for an unknown kind
        named.LOWERINGS[type(kernel)][1](body, kernel, ptrs, first, end)
    body.b.ret_void()
    body.finish()

    entry = Func(mod, symbol, I32, [PTR, PTR, PTR, I64, I64])
    bindings, _consts, _wgc, efirst, eend = entry.fn.args
    b = entry.b
    loaded = [b.load(b.gep(bindings, [ir.Constant(I64, i)], source_etype=PTR), typ=PTR)
              for i in range(nb)]
    b.call(body.fn, loaded + [efirst, eend])
    b.ret(ir.Constant(I32, 0))
    entry.finish()
    return mod


def _with_attributes(text: str, machine: Machine) -> str:
    """Add string function attributes llvmlite's IR builder cannot spell."""
    attrs = f'"prefer-vector-width"="{machine.vector_bits}" "target-cpu"="{machine.cpu}"'
    if machine.features:
        attrs += f' "target-features"="{machine.features}"'
    attrs += ' "no-trapping-math"="true"'
    return re.sub(r"^(define .*\))(.*)$", lambda m: f"{m.group(1)}{m.group(2)} {attrs}",
                  text, flags=re.MULTILINE)


@functools.lru_cache(maxsize=8)
def _target_machine(machine: Machine):
    import llvmlite.binding as llvm

    init_llvm()
    target = llvm.Target.from_triple(machine.triple)
    return target.create_target_machine(cpu=machine.cpu, features=machine.features, opt=3,
                                        reloc="pic", codemodel="small")


def compile_object(kernel: K.Kernel, symbol: str, machine: Machine) -> bytes:
    """Object code of ``kernel`` with entry point ``symbol``."""
    import llvmlite.binding as llvm

    text = _with_attributes(str(build_module(kernel, symbol, machine)), machine)
    tm = _target_machine(machine)
    mod = llvm.parse_assembly(text)
    mod.triple = machine.triple
    mod.data_layout = str(tm.target_data)
    mod.verify()
    pto = llvm.create_pipeline_tuning_options(speed_level=3)
    pto.loop_vectorization = True
    pto.slp_vectorization = True
    pb = llvm.create_pass_builder(tm, pto)
    pb.getModulePassManager().run(mod, pb)
    return tm.emit_object(mod)


def assembly(kernel: K.Kernel, symbol: str, machine: Machine) -> str:
    """Optimised assembly of ``kernel`` (for inspection and tests)."""
    import llvmlite.binding as llvm

    text = _with_attributes(str(build_module(kernel, symbol, machine)), machine)
    tm = _target_machine(machine)
    mod = llvm.parse_assembly(text)
    mod.data_layout = str(tm.target_data)
    pto = llvm.create_pipeline_tuning_options(speed_level=3)
    pto.loop_vectorization = True
    pto.slp_vectorization = True
    pb = llvm.create_pass_builder(tm, pto)
    pb.getModulePassManager().run(mod, pb)
    return tm.emit_assembly(mod)
