"""Local executables and the local dispatch ABI.

The local (CPU) drivers do not know any format themselves: they prepare payloads through the
executable loaders that plugins register (``hal_register_executable_loaders``). A loader turns a payload into a
:class:`LocalExecutable`, whose :meth:`LocalExecutable.run` is the local dispatch ABI.

Dispatch ABI (local drivers):

* A dispatch names an entry point and a workgroup count ``(x, y, z)``. Workgroups are numbered
  in a flat order, x fastest: ``id = x + X * (y + Y * z)``.
* The driver calls ``run(entry, workgroup_count, first, last, bindings, constants)`` for a
  *tile* of consecutive workgroup ids ``[first, last)``. local-sync passes the whole range in
  one call; local-task splits it into one tile per worker (never one call per workgroup: each
  call into native code costs microseconds).
* ``bindings`` are 1-D ``numpy.uint8`` arrays, one per binding slot of the entry point, already
  narrowed to the (offset, length) range the dispatch bound. Their start is 64-byte aligned when
  the binding offset is a multiple of 64, unless the executable declares a smaller
  :attr:`LocalExecutable.binding_alignment` (then only that, and the natural alignment of the
  element types, is guaranteed). Kernels may view them with other dtypes.
* ``constants`` are the dispatch's push constants, as Python ints (32-bit words).
* Address mode: an executable whose class sets ``binding_kind = "address"`` receives instead
  ``bindings`` as a ctypes array ``(ctypes.c_void_p * n)`` of each binding's base address
  (the buffer's base plus the binding offset, resolved once per submission, not per tile) and
  ``constants`` as a ctypes array ``(ctypes.c_uint32 * m)``, or None when ``m == 0``. This is
  what native code called through ctypes wants: no numpy slicing on the dispatch path.
* The bindings of one dispatch never overlap (the compiler checks it), so native code may mark
  binding pointers ``noalias``. Buffers from the HAL allocator are 64-byte aligned.
* ``run`` may be called concurrently from several threads for disjoint tiles of one dispatch;
  it must not keep state between calls that depends on tile order. Native code should release
  the GIL (ctypes does).
* ``run`` raises :class:`~hal_core.errors.HalRuntimeError` (or any exception, which the driver
  wraps) on failure; the driver fails the signal semaphores of the submission with it.

Optional parallel dispatch (local-task):

* An executable may define ``run_parallel(entry, workgroup_count, total, bindings, constants,
  workers)``: run all ``total`` workgroups ``[0, total)`` of one dispatch, return when they are
  done, raise as ``run`` does. local-task calls it instead of cutting the dispatch into tiles
  on its Python workers, when ``total > 1`` and the device has more than one worker.
* ``workers`` is the device's :class:`~hal_core.hal.local.worker_pool.WorkerPool`: at most
  ``workers.size`` threads should run workgroups at once, the calling thread included.
  ``workers.resource(key, factory)`` returns the object ``factory(workers.size)`` made on the
  first call with ``key`` and shared afterwards; the device calls its ``close()`` when it
  closes, and after that ``resource`` returns None (run on the calling thread then). This is
  where native helper threads live, which wait for work without holding the GIL.
* Several submissions may dispatch at once (from local-task's workers and from host threads
  that wait on a submission): ``run_parallel`` must be safe to call concurrently and must never
  wait for helpers that another dispatch is using (llvm-cpu's runs the dispatch on the calling
  thread alone then).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from hal_core.hal.executable import EntryPoint


class LocalExecutable(ABC):
    """A prepared executable that the local drivers can dispatch (see the module docstring)."""

    format: str
    entry_points: tuple[EntryPoint, ...]
    #: The alignment (bytes) this executable's kernels need of a binding's start. The runtime
    #: binds a caller's array in place only when it is this aligned, and otherwise copies it
    #: into 64-byte aligned staging memory. Native code that assumes the ABI's 64 keeps the
    #: default; kernels content with naturally aligned memory (numpy views) may declare 1.
    binding_alignment: int = 64
    #: How :meth:`run` receives bindings and constants: ``"array"`` (1-D numpy uint8 views and
    #: Python ints) or ``"address"`` (ctypes arrays of addresses and uint32 words); see the
    #: module docstring.
    binding_kind: str = "array"

    @abstractmethod
    def run(
        self,
        entry: int,
        workgroup_count: tuple[int, int, int],
        first: int,
        last: int,
        bindings: Sequence[Any],
        constants: Sequence[int],
    ) -> None:
        """Run workgroups ``[first, last)`` of a dispatch of entry point ``entry``."""


class ExecutableLoader(ABC):
    """Turns payloads of one format into :class:`LocalExecutable` objects."""

    format: str

    @abstractmethod
    def load(self, payload: bytes | memoryview, entry_points: Sequence[EntryPoint]) -> LocalExecutable:
        """Prepare ``payload``; raise ModuleFormatError if it is malformed."""
