"""Progress reports of a compile, for a caller that shows them (``hal try``'s bar).

``hal_core.compile(..., progress=callback)`` calls ``callback(CompileProgress(...))`` as each
phase starts and ends and, in the target phases, as kernels are done. The compiler itself never
draws anything; a callback that raises aborts the compile with that error (Ctrl-C included).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class CompileProgress:
    """Where a compile is.

    ``phase`` is the phase's name as ``--timings`` prints it (``"import"``, ``"constant
    folding"``, ``"target llvm-cpu"``, ...); ``done`` of ``total`` units of it are finished:
    kernels in a target phase, 0 of 1 then 1 of 1 in the others.
    """

    phase: str
    done: int
    total: int

    @property
    def finished(self) -> bool:
        return self.done >= self.total


ProgressCallback = Callable[[CompileProgress], None]


def kernel_counter(callback: ProgressCallback | None, phase: str
                   ) -> Callable[[int, int], None] | None:
    """A ``(done, total)`` callable reporting kernels of ``phase`` (the form a target backend's
    ``precompile`` takes), or None when nobody listens."""
    if callback is None:
        return None

    def report(done: int, total: int) -> None:
        callback(CompileProgress(phase, done, total))

    return report
