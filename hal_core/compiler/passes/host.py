"""Host program emission: dispatches, output copies and the barriers between them.

A barrier goes before any command that reads or writes a region an earlier command (since the
last barrier) wrote, or writes a region an earlier command read (transient space is reused).
Regions are byte ranges of one buffer slot. The one exception: the kernels of one ``concat``
write disjoint windows of one buffer, so they need no barrier between them.
"""

from __future__ import annotations

from collections.abc import Sequence

from hal_core.compiler.passes.buffers import BufferPlan
from hal_core.compiler.passes.dispatch import FunctionDispatches
from hal_core.module.model import Barrier, BufferRef, Copy, Dispatch, HostOp


def _overlap(a: BufferRef, b: BufferRef) -> bool:
    return (a.slot == b.slot and a.index == b.index and a.length > 0 and b.length > 0
            and a.offset < b.offset + b.length and b.offset < a.offset + a.length)


class _Hazards:
    def __init__(self) -> None:
        self.reads: list[BufferRef] = []
        self.writes: list[tuple[BufferRef, str | None]] = []

    def needs_barrier(self, reads: Sequence[BufferRef], writes: Sequence[BufferRef],
                      window: str | None) -> bool:
        for r in reads:
            if any(_overlap(r, w) for w, _ in self.writes):
                return True
        for w in writes:
            if any(_overlap(w, r) for r in self.reads):
                return True
            if any(_overlap(w, pw) and (window is None or pwin != window)
                   for pw, pwin in self.writes):
                return True
        return False

    def add(self, reads: Sequence[BufferRef], writes: Sequence[BufferRef],
            window: str | None) -> None:
        self.reads.extend(reads)
        self.writes.extend((w, window) for w in writes)


def emit_program(fd: FunctionDispatches, plan: BufferPlan,
                 entry_points: Sequence[int | tuple[int, int]], executable: int = 0
                 ) -> tuple[HostOp, ...]:
    """The host program; ``entry_points[i]`` says what ``fd.steps[i]`` dispatches: an
    ``(executable, entry point)`` pair, or an entry point of ``executable``."""
    program: list[HostOp] = []
    hazards = _Hazards()

    def command(op: HostOp, reads: list[BufferRef], writes: list[BufferRef],
                window: str | None = None) -> None:
        nonlocal hazards
        if hazards.needs_barrier(reads, writes, window):
            program.append(Barrier())
            hazards = _Hazards()
        program.append(op)
        hazards.add(reads, writes, window)

    for step, entry in zip(fd.steps, entry_points):
        refs = [plan.refs[v.name] for v in step.buffers]
        reads = [r for b, r in enumerate(refs) if b not in step.writes]
        writes = [r for b, r in enumerate(refs) if b in step.writes]
        exe, ep = entry if isinstance(entry, tuple) else (executable, entry)
        command(Dispatch(exe, ep, tuple(refs)), reads, writes, step.window)
    for source, target in plan.copies:
        command(Copy(source, target), [source], [target])
    return tuple(program)
