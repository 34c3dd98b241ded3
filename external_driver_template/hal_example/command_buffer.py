"""Command buffers of the example device: recorded once, replayed by the device's queue.

The base class (hal_core/hal/command_buffer.py) validates recording; :meth:`_compile` turns
the commands into a tuple of steps once, at ``end()``. A step takes the binding table resolved
to device memory (1-D uint8 arrays) and runs on the queue's thread.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from hal_core.errors import HalRuntimeError, UsageError
from hal_core.hal.buffer import Buffer, check_fill_alignment, fill_array
from hal_core.hal.command_buffer import (
    command_refs,
    BarrierCmd,
    CommandBuffer,
    CopyCmd,
    DispatchCmd,
    FillCmd,
    Ref,
    UpdateCmd,
)
from hal_example.executable import ExampleExecutable

Step = Callable[[list], None]


def _memory(ref: Ref) -> Callable[[list], Any]:
    """slots -> the device memory (uint8 array) ``ref`` names."""
    if ref.buffer is not None:
        region = ref.buffer._storage[ref.offset:ref.offset + ref.length]
        return lambda slots: region
    slot, start = ref.slot, ref.offset
    stop = None if ref.length is None else start + ref.length
    return lambda slots: slots[slot][start:stop]


def _step(cmd: Any) -> Step:
    if isinstance(cmd, FillCmd):
        get, pattern = _memory(cmd.target), cmd.pattern

        def fill(slots: list) -> None:
            region = get(slots)
            # A slot filled to its end: the bound buffer's length is known only now.
            check_fill_alignment(cmd.target.offset, region.shape[0], len(pattern), "fill")
            fill_array(region, pattern)

        return fill
    if isinstance(cmd, UpdateCmd):
        import numpy as np

        get, data = _memory(cmd.target), np.frombuffer(cmd.data, np.uint8)
        return lambda slots: get(slots).__setitem__(slice(None), data)
    if isinstance(cmd, CopyCmd):
        src, dst = _memory(cmd.source), _memory(cmd.target)
        return lambda slots: dst(slots).__setitem__(slice(None), src(slots))
    getters = [_memory(r) for r in cmd.bindings]
    exe, entry, count = cmd.executable, cmd.entry, cmd.workgroup_count
    return lambda slots: exe.run(entry, count, [g(slots) for g in getters])


class ExampleCommandBuffer(CommandBuffer):
    def _ref(self, what: str, buf: Buffer | int, offset: int, length: int | None,
             usage: Any) -> Ref:
        if isinstance(buf, Buffer) and buf.allocator is not self.device.allocator:
            raise UsageError(f"{what}: the buffer is not memory of device {self.device.id}; "
                             f"allocate it from this device's allocator")
        return super()._ref(what, buf, offset, length, usage)

    def dispatch(self, executable: Any, entry_point: int | str,
                 workgroup_count: tuple[int, int, int], bindings: Any = (),
                 constants: Any = ()) -> None:
        if not isinstance(executable, ExampleExecutable):
            raise UsageError(f"CommandBuffer.dispatch: device {self.device.id} runs executables "
                             f"it prepared ({ExampleExecutable.format}), got "
                             f"{type(executable).__name__}")
        super().dispatch(executable, entry_point, workgroup_count, bindings, constants)

    def _compile(self) -> None:
        # The queue runs steps one after another, so a barrier has nothing left to order.
        numbered = [(i, c) for i, c in enumerate(self.commands) if not isinstance(c, BarrierCmd)]
        cmds = [c for _, c in numbered]
        self.steps = tuple(_step(c) for c in cmds)
        self.names = tuple(f"command {i} ({_describe(c)})" for i, c in numbered)
        self.extents = [0] * self.slots_used
        for c in cmds:
            for ref in command_refs(c):
                if ref.slot is not None:
                    self.extents[ref.slot] = max(self.extents[ref.slot],
                                                 ref.offset + (ref.length or 0))
        self.recorded = tuple({id(r.buffer.root): r.buffer.root for c in cmds for r in command_refs(c)
                               if r.buffer is not None}.values())

    def bind(self, table: Sequence[Any] | None) -> list:
        """Resolve a binding table to device memory, validating it (at submission)."""
        for root in self.recorded:
            if root.released:
                raise UsageError("queue_execute: a buffer recorded in this command buffer was "
                                 "released; record it again with live buffers")
        slots = []
        for i, extent in enumerate(self.extents):
            entry = table[i]
            buf, off, length = (entry, 0, None) if isinstance(entry, Buffer) else (
                entry if isinstance(entry, tuple) and len(entry) == 3 else (None, 0, None))
            if not isinstance(buf, Buffer):
                raise UsageError(f"binding table slot {i}: expected a Buffer or (Buffer, offset, "
                                 f"length), got {entry!r}")
            if buf.allocator is not self.device.allocator:
                raise UsageError(f"binding table slot {i}: the buffer is not memory of device "
                                 f"{self.device.id}; copy the data in with queue_write")
            off, length = buf.check_range(off, length, f"binding table slot {i}")
            if length < extent:
                raise UsageError(f"binding table slot {i}: the command buffer uses bytes up to "
                                 f"{extent} but the bound range has {length}; bind a larger "
                                 f"buffer")
            slots.append(buf._storage[off:off + length])
        return slots

    def execute(self, slots: list) -> None:
        for step, name in zip(self.steps, self.names):
            try:
                step(slots)
            except HalRuntimeError:
                raise
            except Exception as e:
                raise HalRuntimeError(f"{name} failed: {type(e).__name__}: {e}") from e


def _describe(cmd: Any) -> str:
    if isinstance(cmd, DispatchCmd):
        return f"dispatch of {cmd.executable.entry_points[cmd.entry].name!r}"
    return type(cmd).__name__.removesuffix("Cmd").lower()
