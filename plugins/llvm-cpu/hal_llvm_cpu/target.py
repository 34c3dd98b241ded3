"""The llvm-cpu target backend: kernel IR -> one ``llvm-object-<arch>`` variant.

Options (``hal compile --llvm-cpu-<option>=VALUE``):

* ``target-triple``: LLVM triple, default the host's (``aarch64-linux-gnu`` cross-compiles).
* ``target-cpu``: ``host`` (default: the host CPU's name and features), ``generic`` (the
  architecture's baseline), ``x86-64-v2|v3|v4``, or a named CPU together with
  ``target-cpu-features`` (the features it may use, ``+avx2,+fma``), which the variant records.
* ``target-cpu-features``: extra LLVM features, ``+feat,-feat``.
* ``no-cache``: ``1`` to bypass the on-disk object cache (also ``HAL_NO_CACHE=1``).

The variant records the CPU features its code uses as ``cpu:<llvm name>`` requirements.
"""

from __future__ import annotations

import logging
import time

from hal_core.compiler import kernel_ir as K
from hal_core.compiler.target import TargetBackend, TargetOptions
from hal_core.errors import CompileError
from hal_core.module.model import Variant, VariantEntryPoint
from hal_llvm_cpu import cache as object_cache
from hal_llvm_cpu.payload import Payload

log = logging.getLogger(__name__)

OPTIONS = ("target-triple", "target-cpu", "target-cpu-features", "no-cache")

#: Features worth recording as requirements: the ISA extensions code generation may use.
ISA_FEATURES = frozenset("""
sse sse2 sse3 ssse3 sse4.1 sse4.2 popcnt avx avx2 fma f16c bmi bmi2 lzcnt movbe avx512f avx512bw
avx512cd avx512dq avx512vl avx512vnni avx512bf16 avx512vbmi avx512vbmi2 avx512ifma
avx512vpopcntdq avx512bitalg avx512fp16 avxvnni gfni vaes vpclmulqdq pclmul aes sha
neon fp-armv8 sve sve2 dotprod fullfp16 i8mm bf16
""".split())

_X86_LEVELS = {
    "x86-64-v2": "cx16 popcnt sse3 sse4.1 sse4.2 ssse3",
    "x86-64-v3": "cx16 popcnt sse3 sse4.1 sse4.2 ssse3 avx avx2 bmi bmi2 f16c fma lzcnt movbe",
    "x86-64-v4": "cx16 popcnt sse3 sse4.1 sse4.2 ssse3 avx avx2 bmi bmi2 f16c fma lzcnt movbe "
                 "avx512f avx512bw avx512cd avx512dq avx512vl",
}


def host_triple() -> str:
    import llvmlite.binding as llvm

    return llvm.get_process_triple()


def resolve_machine(options: TargetOptions):
    """(Machine, required features) for ``options``; CompileError for unusable ones."""
    import llvmlite.binding as llvm

    from hal_llvm_cpu.backend import Machine, enabled_features, init_llvm

    init_llvm()
    unknown = sorted(set(options.options) - set(OPTIONS))
    if unknown:
        raise CompileError(f"target llvm-cpu has no option {', '.join(unknown)}; its options "
                           f"are {', '.join(OPTIONS)} (as --llvm-cpu-<option>=VALUE)")
    triple = options.get("target-triple") or host_triple()
    cpu = options.get("target-cpu") or "host"
    extra = options.get("target-cpu-features") or ""
    try:
        llvm.Target.from_triple(triple)
    except RuntimeError as exc:
        raise CompileError(f"llvm-cpu: LLVM cannot generate code for triple {triple!r} "
                           f"({exc}); use a triple such as x86_64-linux-gnu or "
                           "aarch64-linux-gnu") from exc
    same_arch = triple.split("-")[0] == host_triple().split("-")[0]
    if cpu == "host":
        if not same_arch:
            raise CompileError(f"llvm-cpu: target-cpu=host names this machine's CPU, which "
                               f"cannot run {triple!r}; pass target-cpu=generic or a CPU of "
                               "that architecture")
        name = llvm.get_host_cpu_name()
        features = llvm.get_host_cpu_features().flatten()
        required = [f for f in enabled_features(features) if f in ISA_FEATURES]
    elif cpu == "generic":
        # aarch64's baseline includes Advanced SIMD, which LLVM's generic CPU uses.
        name, features = "generic", ""
        required = ["neon", "fp-armv8"] if triple.startswith(("aarch64", "arm64")) else []
    elif cpu in _X86_LEVELS:
        name, features = cpu, ""
        required = _X86_LEVELS[cpu].split()
    elif extra:
        name, features, required = cpu, "", []
    else:
        raise CompileError(f"llvm-cpu: for target-cpu={cpu!r} also pass "
                           "--llvm-cpu-target-cpu-features=+feat,... naming the features it "
                           "may use (they become the variant's requirements, so a CPU "
                           "lacking one refuses the code instead of crashing on it); or use "
                           "host, generic or x86-64-v2/v3/v4")
    if extra:
        features = ",".join(filter(None, [features, extra]))
        on = set(enabled_features(extra))
        off = {x[1:] for x in extra.split(",") if x.startswith("-")}
        required = sorted((set(required) | (on & ISA_FEATURES)) - off)
    return Machine(triple, name, features), tuple(f"cpu:{f}" for f in sorted(set(required)))


def binding_sizes(k: K.Kernel) -> tuple[int, ...]:
    """Bytes each binding of ``k`` must hold: the loader refuses smaller buffers."""
    need = [0] * K.binding_count(k)
    for op, _ in K.kernel_operands(k):
        if op.num_elements:
            need[op.binding] = max(need[op.binding], op.byte_offset + op.byte_size)
    return tuple(need)


def written_bindings(k: K.Kernel) -> tuple[int, ...]:
    """The bindings ``k`` writes: the others may share memory (one constant bound twice)."""
    return tuple(sorted({op.binding for op, written in K.kernel_operands(k) if written}))


def format_for(arch: str) -> str:
    return f"llvm-object-{arch}"


class LlvmCpuTarget(TargetBackend):
    name = "llvm-cpu"

    def __init__(self) -> None:
        self._made: dict[str, bytes] = {}   # kernel key -> object, from precompile()

    def precompile(self, executables, options: TargetOptions, progress=None) -> None:
        """Compile every distinct kernel of a module at once: cache hits are read, the rest
        compiled in worker processes (llvmlite compiles under one global lock)."""
        from hal_llvm_cpu import backend
        from hal_llvm_cpu.codegen import UnsupportedKernelError

        machine, _ = resolve_machine(options)
        use_cache = options.get("no-cache", "0").lower() in ("0", "false", "no", "")
        todo: dict[str, K.Kernel] = {}
        for exe in executables:
            for k in exe.kernels:
                try:
                    backend.plan(k, machine)
                except UnsupportedKernelError:
                    continue
                todo.setdefault(object_cache.kernel_key(k, machine), k)
        todo = {key: k for key, k in todo.items() if key not in self._made}
        objs = object_cache.compile_all(list(todo.items()), machine, use_cache, progress)
        self._made.update((key, o) for key, o in zip(todo, objs) if o is not None)

    def compile(self, executable: K.KernelExecutable, options: TargetOptions) -> Variant:
        if not executable.kernels:
            raise CompileError(f"executable {executable.name!r} has no kernels to compile")
        from hal_llvm_cpu import backend

        machine, required = resolve_machine(options)
        use_cache = options.get("no-cache", "0").lower() in ("0", "false", "no", "")
        t0 = time.perf_counter()
        entries, objects, index = [], [], {}
        eps = []
        todo = []
        for k in executable.kernels:
            K.validate(k)
            wg, _ = backend.plan(k, machine)
            key = object_cache.kernel_key(k, machine)
            if key not in index:
                index[key] = len(objects)
                objects.append(self._made.get(key))
                if objects[-1] is None:
                    todo.append((key, k))
            entries.append((f"hal_{key[:24]}", index[key]))
            eps.append(VariantEntryPoint(name=k.name, workgroup_count=(wg, 1, 1),
                                         binding_count=K.binding_count(k)))
        for (key, k), obj in zip(todo, object_cache.compile_all(todo, machine, use_cache)):
            if obj is None:   # declined: compiling here raises UnsupportedKernelError saying why
                obj = backend.compile_object(k, f"hal_{key[:24]}", machine)
            objects[index[key]] = obj
        log.info("llvm-cpu: %s: %d kernels (%d distinct) in %.2fs", executable.name,
                 len(executable.kernels), len(objects), time.perf_counter() - t0)
        payload = Payload(machine.triple, machine.cpu, tuple(r[4:] for r in required),
                          tuple(entries), tuple(objects),
                          tuple(binding_sizes(k) for k in executable.kernels),
                          tuple(written_bindings(k) for k in executable.kernels)).encode()
        return Variant(target_backend="llvm-cpu", format=format_for(machine.arch),
                       features=required, entry_points=tuple(eps), payload=payload)


def create_target() -> LlvmCpuTarget:
    return LlvmCpuTarget()


def create_deprecated_target() -> LlvmCpuTarget:
    log.warning("target 'dylib-llvm-aot' is deprecated; use 'llvm-cpu' (same code)")
    return LlvmCpuTarget()
