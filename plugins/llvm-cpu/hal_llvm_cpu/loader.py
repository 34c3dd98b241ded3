"""Loads ``llvm-object-<arch>`` payloads: links their object code in-process with LLJIT.

No IR is compiled again: the object bytes go to ``JITLibraryBuilder.add_object_img`` (MCJIT is
not used: it crashes on unresolved symbols and miscomputes PIC objects). Before anything is
linked the loader checks the code's architecture (the format, the triple and each object's ELF
header) and the CPU features it requires against this host, and refuses with an
IncompatibleModuleError: executing code for another CPU dies with SIGILL.
"""

from __future__ import annotations

import ctypes
import itertools
import logging
import platform
import threading
from collections.abc import Sequence
from typing import Any

from hal_core.errors import HalRuntimeError, IncompatibleModuleError, ModuleFormatError
from hal_core.hal.executable import EntryPoint, ExecutableLoader, LocalExecutable
from hal_llvm_cpu.payload import decode

log = logging.getLogger(__name__)

_ELF_MACHINE = {62: "x86_64", 183: "aarch64", 243: "riscv64", 3: "i386", 40: "arm"}
_ENTRY = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                          ctypes.c_int64, ctypes.c_int64)
_jit_lock = threading.Lock()
_jit: Any = None
_names = itertools.count()
#: Chunks of workgroups per thread in a parallel dispatch: enough that a helper starting late
#: (a sleeping core's wake-up) leaves little imbalance, few enough that claims cost nothing.
CHUNKS_PER_THREAD = 8
_POOL_KEY = "hal_llvm_cpu.parallel.NativePool"


def host_arch() -> str:
    m = platform.machine().lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(m, m)


def host_features() -> frozenset[str]:
    import llvmlite.binding as llvm

    from hal_llvm_cpu.backend import enabled_features

    return frozenset(enabled_features(llvm.get_host_cpu_features().flatten()))


def _lljit() -> Any:
    global _jit
    with _jit_lock:
        if _jit is None:
            import llvmlite.binding as llvm

            from hal_llvm_cpu.backend import init_llvm

            init_llvm()
            _jit = llvm.create_lljit_compiler()
        return _jit


def check_compatible(fmt: str, triple: str, features: Sequence[str], objects: Sequence[bytes]
                     ) -> None:
    arch = fmt.removeprefix("llvm-object-")
    here = host_arch()
    if arch != here or triple.split("-")[0].replace("arm64", "aarch64") != here:
        raise IncompatibleModuleError(
            f"{fmt} variant holds {arch} code (triple {triple}); this host is {here}, so it "
            f"cannot run it; recompile with --target-backends=llvm-cpu for this host (or "
            f"--llvm-cpu-target-triple={here}-linux-gnu), or add a vmvx variant")
    for i, obj in enumerate(objects):
        if obj[:4] != b"\x7fELF" or len(obj) < 20:
            raise ModuleFormatError(f"{fmt} payload: object {i} is not an ELF object file; "
                                    "recompile the module")
        machine = _ELF_MACHINE.get(int.from_bytes(obj[18:20], "little"), "unknown")
        if machine != here:
            raise IncompatibleModuleError(f"{fmt} payload: object {i} holds {machine} code; "
                                          f"this host is {here}; recompile for this host")
    missing = sorted(set(features) - host_features())
    if missing:
        raise IncompatibleModuleError(
            f"{fmt} variant needs CPU features this host lacks: "
            f"{', '.join('cpu:' + m for m in missing)}; recompile with "
            "--llvm-cpu-target-cpu=host (or generic) on this machine, or add a vmvx variant")


class LlvmExecutable(LocalExecutable):
    """Native entry points; ``run`` calls one per tile of workgroups (the GIL is released)."""

    binding_kind = "address"
    binding_alignment = 16

    def __init__(self, fmt: str, entry_points: tuple[EntryPoint, ...],
                 functions: list[Any], tracker: Any, sizes: Sequence[Sequence[int]],
                 written: Sequence[Sequence[int]] | None = None) -> None:
        self.format = fmt
        self._sizes = [tuple(x) for x in sizes]
        self._written = None if written is None else [frozenset(w) for w in written]
        self.entry_points = entry_points
        self._fns = functions
        self._addresses = [ctypes.cast(f, ctypes.c_void_p).value for f in functions]
        self._tracker = tracker     # keeps the linked code alive as long as this executable

    def run(self, entry: int, workgroup_count: tuple[int, int, int], first: int, last: int,
            bindings: Sequence[Any], constants: Sequence[int] | None) -> None:
        ptrs, constants = self._arguments(entry, bindings, constants)
        wgc = (ctypes.c_uint32 * 3)(*workgroup_count)
        rc = self._fns[entry](ptrs, constants, wgc, first, last)
        if rc != 0:
            self._failed(entry, rc, first, last)

    def run_parallel(self, entry: int, workgroup_count: tuple[int, int, int], total: int,
                     bindings: Sequence[Any], constants: Sequence[int] | None,
                     workers: Any) -> None:
        """Run all ``total`` workgroups on the device's native helper threads (see
        :mod:`hal_llvm_cpu.parallel`): chunks of workgroups are claimed by the calling thread
        and the helpers alike, so a helper that starts late takes fewer."""
        from hal_llvm_cpu.parallel import NativePool

        pool = workers.resource(_POOL_KEY, NativePool) if workers.size > 1 else None
        if pool is None:    # one worker, or a device being closed
            self.run(entry, workgroup_count, 0, total, bindings, constants)
            return
        ptrs, constants = self._arguments(entry, bindings, constants)
        wgc = (ctypes.c_uint32 * 3)(*workgroup_count)
        chunk = max(1, total // (pool.threads * CHUNKS_PER_THREAD))
        rc, first, last = pool.run(self._addresses[entry], ptrs, constants, wgc, 0, total, chunk)
        if rc != 0:
            self._failed(entry, rc, first, last)

    def _arguments(self, entry: int, bindings: Sequence[Any], constants: Sequence[int] | None
                   ) -> tuple[Any, Any]:
        if isinstance(bindings, ctypes.Array):
            ptrs = bindings
        else:   # numpy views (the ABI's "array" binding kind): sizes can be checked here
            self._check_sizes(entry, bindings)
            ptrs = (ctypes.c_void_p * max(1, len(bindings)))(
                *[b.__array_interface__["data"][0] for b in bindings])
        if constants is not None and not isinstance(constants, ctypes.Array):
            constants = (ctypes.c_uint32 * len(constants))(*constants) if constants else None
        return ptrs, constants

    def _failed(self, entry: int, rc: int, first: int, last: int) -> None:
        raise HalRuntimeError(f"{self.format} entry point {self.entry_points[entry].name!r}"
                              f" returned {rc} for workgroups [{first}, {last})")

    def written_bindings(self, entry: int) -> frozenset[int]:
        """The bindings ``entry`` writes (read-only bindings may share memory)."""
        if self._written is None:   # an older payload: every binding may be written
            return frozenset(range(len(self._sizes[entry])))
        return self._written[entry]

    def binding_sizes(self, entry: int) -> tuple[int, ...]:
        """Bytes each binding of ``entry`` must hold (checked by the local command buffer)."""
        return self._sizes[entry]

    def _check_sizes(self, entry: int, bindings: Sequence[Any]) -> None:
        need = self._sizes[entry]
        if len(bindings) < len(need):
            raise HalRuntimeError(f"{self.format} entry point {self.entry_points[entry].name!r}"
                                  f" takes {len(need)} bindings, the dispatch gave "
                                  f"{len(bindings)}")
        for i, (arr, n) in enumerate(zip(bindings, need)):
            if arr.nbytes < n:
                raise HalRuntimeError(
                    f"{self.format} entry point {self.entry_points[entry].name!r}: binding {i}"
                    f" holds {arr.nbytes} bytes, the kernel accesses {n}; bind a larger "
                    "buffer range")


def link_objects(objects: Sequence[bytes], symbols: Sequence[str], name: str) -> Any:
    """Link object code into the process's LLJIT (symbols of the process resolve) and return
    the resource tracker that keeps it alive; ``tracker[symbol]`` is an exported address.
    An unresolved symbol raises RuntimeError."""
    import llvmlite.binding as llvm

    jit = _lljit()
    builder = llvm.JITLibraryBuilder()
    for obj in objects:
        builder.add_object_img(obj)
    builder.add_current_process()
    for sym in symbols:
        builder.export_symbol(sym)
    with _jit_lock:
        return builder.link(jit, name)


class LlvmObjectLoader(ExecutableLoader):
    def __init__(self, fmt: str) -> None:
        self.format = fmt

    def load(self, payload: bytes | memoryview, entry_points: Sequence[EntryPoint]
             ) -> LlvmExecutable:
        p = decode(payload)
        if len(p.entries) != len(entry_points):
            raise ModuleFormatError(f"{self.format} payload has {len(p.entries)} entry points, "
                                    f"the variant declares {len(entry_points)}; recompile")
        check_compatible(self.format, p.triple, p.features, p.objects)
        try:
            tracker = link_objects(p.objects, [sym for sym, _ in dict.fromkeys(p.entries)],
                                   f"hal-llvm-{next(_names)}")
        except RuntimeError as exc:
            raise ModuleFormatError(f"{self.format}: linking the object code failed: {exc}; "
                                    "recompile the module") from exc
        fns = [_ENTRY(tracker[sym]) for sym, _ in p.entries]
        return LlvmExecutable(self.format, tuple(entry_points), fns, tracker, p.binding_sizes,
                              p.written)


def create_loader_x86_64() -> LlvmObjectLoader:
    return LlvmObjectLoader("llvm-object-x86_64")


def create_loader_aarch64() -> LlvmObjectLoader:
    return LlvmObjectLoader("llvm-object-aarch64")


def probe_arch(arch: str) -> str | None:
    here = host_arch()
    return None if here == arch else f"this host is {here}, not {arch}"


def probe_x86_64() -> str | None:
    return probe_arch("x86_64")


def probe_aarch64() -> str | None:
    return probe_arch("aarch64")
