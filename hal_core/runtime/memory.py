"""Host memory for call results and staged arguments.

Outputs are new on every call (they are handed to the caller), so their allocation is on the
per-call path:

* small results are carved from a shared slab (one slice each) instead of paying a numpy
  allocation plus an address query; a returned array keeps its slab alive, so at most one slab
  (:data:`SLAB_BYTES`) stays pinned per live small result;
* large results are recycled once the caller has dropped every array viewing them: CPython's
  reference count of the memory's owner array says so exactly (every numpy view holds a
  reference to it), so a buffer is reused only when nothing else can see it. This spares the
  page faults of fresh memory (milliseconds for tens of MiB). At most :data:`SPARES` buffers
  per size, and :data:`SPARE_BYTES` in all, are kept until the module is closed; a larger
  result is never kept, so its memory goes back to the system once the caller drops it.

The outputs of one call are taken together (:meth:`ResultMemory.take_all`): a spare handed to
one output is not free for the next, even though nobody views it yet.
"""

from __future__ import annotations

from sys import getrefcount
from typing import Any

from hal_core.hal.allocator import BUFFER_ALIGNMENT, aligned_host_array

#: Results up to this size come from slabs; larger ones get their own allocation.
SMALL_BYTES = 4096
SLAB_BYTES = 64 * 1024
#: Results of at least this size are recycled once the caller no longer holds them.
RECYCLE_BYTES = 1 << 20
SPARES = 4
#: Most bytes of spare result memory one function keeps between calls.
SPARE_BYTES = 64 << 20
#: Arguments up to this size are copied into a staging buffer rather than checked for
#: alignment and wrapped: copying a few hundred bytes is cheaper than asking for the address.
COPY_BELOW_BYTES = 1024


class ResultMemory:
    """64-byte aligned 1-D uint8 arrays that nothing else refers to.

    Not thread safe: each function has one and serialises its calls.
    """

    __slots__ = ("_kept", "_pos", "_slab", "_spares")

    def __init__(self) -> None:
        self._slab: Any = None
        self._pos = SLAB_BYTES
        self._spares: dict[int, list[tuple[Any, int]]] = {}  # size -> [(array, free refcount)]
        self._kept = 0  # bytes held in _spares

    def take_all(self, sizes: Any) -> list[Any]:
        """One array per size for the outputs of one call, never two the same."""
        out: list[Any] = []
        for size in sizes:
            out.append(self.take(size, out))
        return out

    def take(self, size: int, taken: Any = ()) -> Any:
        """An array of ``size`` bytes that nothing refers to and that is not in ``taken``."""
        if size >= RECYCLE_BYTES:
            return self._recycled(size, taken)
        if size > SMALL_BYTES:
            return aligned_host_array(size)
        pos = self._pos
        end = pos + size
        if end > SLAB_BYTES or self._slab is None:
            self._slab = aligned_host_array(SLAB_BYTES)
            pos, end = 0, size
        self._pos = -(-end // BUFFER_ALIGNMENT) * BUFFER_ALIGNMENT
        return self._slab[pos:end]

    def _recycled(self, size: int, taken: Any) -> Any:
        spares = self._spares.setdefault(size, [])
        for array, free in spares:
            # Free when only ``array`` itself (and the argument of this call) refer to the owner;
            # an array already taken by this call is referred to by nothing else yet either.
            if getrefcount(array.base) == free and not any(t is array for t in taken):
                return array
        array = aligned_host_array(size)
        if len(spares) < SPARES and self._kept + size <= SPARE_BYTES:
            spares.append((array, getrefcount(array.base)))
            self._kept += size
        return array

    def clear(self) -> None:
        self._spares.clear()
        self._kept = 0
        self._slab = None


def is_aligned(array: Any, alignment: int = BUFFER_ALIGNMENT) -> bool:
    return array.__array_interface__["data"][0] % alignment == 0


def binding_alignment(function: Any, executables: list[Any]) -> int:
    """The alignment the kernels ``function`` dispatches need of its arguments' memory.

    The largest :attr:`~hal_core.hal.executable.LocalExecutable.binding_alignment` among
    them (64, the dispatch ABI's, for executables that do not say).
    """
    from hal_core.module.model import Dispatch

    used = {op.executable for op in function.program if isinstance(op, Dispatch)}
    return max((getattr(executables[i], "binding_alignment", BUFFER_ALIGNMENT) for i in used),
               default=1)


def wrappable(array: Any, alignment: int) -> bool:
    """True when ``array`` may be bound in place: not tiny, C-contiguous and aligned."""
    if array.nbytes < COPY_BELOW_BYTES or not array.flags.c_contiguous:
        return False
    if alignment <= 1:
        return array.flags.aligned
    return array.flags.aligned and is_aligned(array, alignment)


def allocation_failed(what: str, size: int, error: BaseException) -> Exception:
    """The error for memory the host could not provide (numpy raises MemoryError or, for
    sizes beyond its limits, ValueError)."""
    from hal_core.errors import HalRuntimeError

    return HalRuntimeError(f"{what}: cannot allocate {size} bytes of host memory "
                           f"({type(error).__name__}: {error}); free memory or use smaller "
                           f"shapes")
