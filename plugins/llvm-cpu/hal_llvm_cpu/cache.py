"""Compiling kernels to objects: an on-disk cache and a process pool.

Cache: ``$HAL_CACHE_DIR`` (default ``~/.cache/hal``) ``/llvm-cpu/<key>.o``; the key hashes
the kernel (without its name), the target machine, the code generator's version and the
llvmlite/LLVM versions. ``HAL_NO_CACHE=1`` bypasses it. llvmlite compiles under one global
lock, so with ``HAL_COMPILE_JOBS=N`` (N > 1) many kernels are compiled in N worker processes
(forkserver: the calling script must guard its top level with ``if __name__ == "__main__"``, as
multiprocessing requires). The default is one process: a ResNet-50 compiles in ~12 s anyway.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from hal_core.compiler import kernel_ir as K

log = logging.getLogger(__name__)

#: Compile in processes when at least this many kernels miss the cache.
PARALLEL_MIN = 8


@functools.cache
def _versions() -> str:
    """llvmlite, LLVM and the code generator's own source: any change invalidates the cache."""
    import llvmlite
    import llvmlite.binding as llvm

    h = hashlib.blake2b(digest_size=12)
    for path in sorted(Path(__file__).parent.glob("*.py")):
        h.update(path.read_bytes())
    return f"{llvmlite.__version__}/{llvm.llvm_version_info}/{h.hexdigest()}"


def kernel_key(kernel: K.Kernel, machine) -> str:
    text = repr((dataclasses.replace(kernel, name=""), machine, _versions()))
    return hashlib.blake2b(text.encode(), digest_size=20).hexdigest()


def cache_dir() -> Path:
    root = os.environ.get("HAL_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "hal")
    return Path(root) / "llvm-cpu"


def _enabled(use_cache: bool) -> bool:
    return use_cache and os.environ.get("HAL_NO_CACHE", "0") in ("", "0")


def _read(key: str) -> bytes | None:
    try:
        return (cache_dir() / f"{key}.o").read_bytes()
    except OSError:
        return None


def _write(key: str, obj: bytes) -> None:
    d = cache_dir()
    try:
        d.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=d, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(obj)
        os.replace(tmp, d / f"{key}.o")
    except OSError as exc:   # a read-only home must not fail compiles
        log.warning("llvm-cpu: cannot write the object cache in %s: %s", d, exc)


def _jobs() -> int:
    try:
        return max(1, int(os.environ.get("HAL_COMPILE_JOBS", "1")))
    except ValueError:
        return 1


def _compile_one(args: tuple) -> bytes | None:
    """Object code, or None for a kernel the target declines (compile() reports it)."""
    from hal_llvm_cpu.backend import compile_object
    from hal_llvm_cpu.codegen import UnsupportedKernelError

    key, kernel, machine = args
    try:
        return compile_object(kernel, f"hal_{key[:24]}", machine)
    except UnsupportedKernelError:
        return None


def compile_all(todo: Sequence[tuple[str, K.Kernel]], machine, use_cache: bool = True,
                progress: Callable[[int, int], None] | None = None) -> list[bytes]:
    """Objects for ``(key, kernel)`` pairs, from the cache or compiled (None: declined);
    ``progress(done, total)`` is told as kernels are finished."""
    cached = _enabled(use_cache)
    out: list[bytes | None] = [_read(key) if cached else None for key, _ in todo]
    missing = [i for i, o in enumerate(out) if o is None]
    jobs = [(todo[i][0], todo[i][1], machine) for i in missing]
    workers = min(len(jobs), _jobs())
    hits = len(todo) - len(jobs)

    def counted(results):   # results as they come, reported
        for n, obj in enumerate(results, 1):
            if progress is not None:
                progress(hits + n, len(todo))
            yield obj

    if progress is not None:
        progress(hits, len(todo))
    objs = None
    if len(jobs) >= PARALLEL_MIN and workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        from concurrent.futures.process import BrokenProcessPool

        ctx = multiprocessing.get_context("forkserver")
        try:
            with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
                objs = list(counted(pool.map(_compile_one, jobs,
                                             chunksize=max(1, len(jobs) // (4 * workers)))))
        except BrokenProcessPool as exc:
            log.warning("llvm-cpu: compiling in %d processes failed (%s); compiling in this "
                        "one", workers, exc)
    if objs is None:
        objs = list(counted(_compile_one(j) for j in jobs))
    for i, obj in zip(missing, objs):
        out[i] = obj
        if cached and obj is not None:
            _write(todo[i][0], obj)
    log.debug("llvm-cpu: %d kernels, %d from the cache", len(todo), len(todo) - len(missing))
    return out  # type: ignore[return-value]
