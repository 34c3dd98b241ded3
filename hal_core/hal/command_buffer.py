"""Command buffers: recorded fill/update/copy/dispatch/barrier commands, one-shot or reusable.

Recording validates everything it can (ranges, fill alignment, usage bits, entry points and
binding counts) so that execution does not have to. A buffer operand is a *binding reference*:

* a :class:`~hal_core.hal.buffer.Buffer` (the whole buffer, or a range via offset/length), or
* an ``int`` slot into the *binding table* given to ``queue_execute``, so one recorded command
  buffer runs again with other buffers (``binding_capacity`` must cover the slot).

Dispatch bindings are ``Buffer``, ``int`` slot, or ``(Buffer | int, offset, length)`` triples
(``length`` None: to the end of the bound buffer).

:meth:`CommandBuffer.end` hands the commands to :meth:`CommandBuffer._compile`, where a driver
turns them into its executable form once (the local drivers build a list of closures), so a
reusable command buffer costs little per submission.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hal_core.errors import UsageError
from hal_core.hal.allocator import BufferUsage
from hal_core.hal.buffer import Buffer, check_fill_alignment, fill_pattern

if TYPE_CHECKING:
    from hal_core.hal.executable import LocalExecutable


class CommandBufferMode(enum.Enum):
    ONE_SHOT = "one-shot"  # submitted once, then done
    REUSABLE = "reusable"  # may be submitted any number of times


class CommandBufferState(enum.Enum):
    INITIAL = "initial"
    RECORDING = "recording"
    EXECUTABLE = "executable"
    SUBMITTED = "submitted"  # a one-shot buffer after its submission


@dataclass(frozen=True)
class Ref:
    """A recorded binding reference: a concrete buffer or a binding-table slot, plus a range."""

    buffer: Buffer | None
    slot: int | None
    offset: int
    length: int | None  # None: to the end of the bound buffer


@dataclass(frozen=True)
class FillCmd:
    target: Ref
    pattern: bytes


@dataclass(frozen=True)
class UpdateCmd:
    data: bytes
    target: Ref


@dataclass(frozen=True)
class CopyCmd:
    source: Ref
    target: Ref


@dataclass(frozen=True)
class DispatchCmd:
    executable: Any  # LocalExecutable for the local drivers
    entry: int
    workgroup_count: tuple[int, int, int]
    bindings: tuple[Ref, ...]
    constants: tuple[int, ...]


@dataclass(frozen=True)
class BarrierCmd:
    pass


Command = FillCmd | UpdateCmd | CopyCmd | DispatchCmd | BarrierCmd


def command_refs(cmd: Any) -> tuple[Ref, ...]:
    """The buffer references a recorded command touches (none for a barrier)."""
    if isinstance(cmd, (FillCmd, UpdateCmd)):
        return (cmd.target,)
    if isinstance(cmd, CopyCmd):
        return (cmd.source, cmd.target)
    if isinstance(cmd, DispatchCmd):
        return cmd.bindings
    return ()


class CommandBuffer:
    """A sequence of commands for one device's queue."""

    def __init__(
        self,
        device: Any,
        mode: CommandBufferMode = CommandBufferMode.ONE_SHOT,
        binding_capacity: int = 0,
    ) -> None:
        if not isinstance(mode, CommandBufferMode):
            raise UsageError(f"command buffer mode must be a CommandBufferMode, got {mode!r}")
        if not isinstance(binding_capacity, int) or binding_capacity < 0:
            raise UsageError(
                f"binding_capacity must be a non-negative int, got {binding_capacity!r}"
            )
        self.device = device
        self.mode = mode
        self.binding_capacity = binding_capacity
        self.state = CommandBufferState.INITIAL
        self.commands: list[Command] = []
        self.slots_used = 0  # 1 + the highest slot referenced

    def __repr__(self) -> str:
        return f"<CommandBuffer {self.mode.value} {self.state.value} {len(self.commands)} commands>"

    # -- lifecycle -------------------------------------------------------------------------

    def begin(self) -> CommandBuffer:
        if self.state is not CommandBufferState.INITIAL:
            raise UsageError(
                f"CommandBuffer.begin: the command buffer is {self.state.value}; "
                f"begin() is called once, on a new command buffer"
            )
        self.state = CommandBufferState.RECORDING
        return self

    def end(self) -> CommandBuffer:
        self._recording("end")
        self._compile()
        self.state = CommandBufferState.EXECUTABLE
        return self

    def __enter__(self) -> CommandBuffer:  # noqa: PYI034 - Self needs Python 3.11
        return self.begin()

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None:
            self.end()

    def _compile(self) -> None:
        """Driver hook: precompute the executable form of ``self.commands``."""

    def _recording(self, op: str) -> None:
        if self.state is not CommandBufferState.RECORDING:
            raise UsageError(
                f"CommandBuffer.{op}: the command buffer is {self.state.value}, not "
                f"recording; call begin() first (and nothing after end())"
            )

    def check_submittable(self, table: Any) -> None:
        """Raise unless the buffer may be submitted now with binding table ``table``."""
        if self.state is not CommandBufferState.EXECUTABLE:
            if self.state is CommandBufferState.SUBMITTED:
                raise UsageError(
                    "queue_execute: this one-shot command buffer was already "
                    "submitted; create it with mode=REUSABLE to submit it again"
                )
            raise UsageError(
                f"queue_execute: the command buffer is {self.state.value}; call "
                f"end() before submitting it"
            )
        if self.slots_used and (table is None or len(table) < self.slots_used):
            given = "none" if table is None else f"{len(table)} entries"
            raise UsageError(
                f"queue_execute: the command buffer uses binding-table slots "
                f"0..{self.slots_used - 1} but the binding table has {given}; "
                f"pass binding_tables=[[buffer, ...]] with a buffer per slot"
            )

    def mark_submitted(self) -> None:
        """Called by the device once a submission of this buffer is accepted."""
        if self.mode is CommandBufferMode.ONE_SHOT:
            self.state = CommandBufferState.SUBMITTED

    # -- references --------------------------------------------------------------------------

    def _ref(
        self, what: str, buf: Buffer | int, offset: int, length: int | None, usage: BufferUsage
    ) -> Ref:
        if isinstance(buf, Buffer):
            offset, length = buf.check_range(offset, length, what)
            buf._require(usage, what)
            return Ref(buf, None, offset, length)
        if isinstance(buf, int) and not isinstance(buf, bool):
            if not 0 <= buf < self.binding_capacity:
                raise UsageError(
                    f"{what}: binding-table slot {buf} is outside the command "
                    f"buffer's binding_capacity {self.binding_capacity}; create it "
                    f"with a larger binding_capacity"
                )
            if not isinstance(offset, int) or offset < 0:
                raise UsageError(f"{what}: offset must be a non-negative int, got {offset!r}")
            if length is not None and (not isinstance(length, int) or length < 0):
                raise UsageError(
                    f"{what}: length must be a non-negative int or None, got {length!r}"
                )
            self.slots_used = max(self.slots_used, buf + 1)
            return Ref(None, buf, offset, length)
        raise UsageError(
            f"{what}: expected a Buffer or a binding-table slot (int), got {type(buf).__name__}"
        )

    # -- commands ------------------------------------------------------------------------------

    def fill(
        self,
        target: Buffer | int,
        pattern: bytes | int,
        offset: int = 0,
        length: int | None = None,
        pattern_length: int | None = None,
    ) -> None:
        """Fill ``target[offset:offset+length]`` with a repeated 1, 2 or 4-byte pattern."""
        self._recording("fill")
        data = fill_pattern(pattern, pattern_length)
        ref = self._ref("CommandBuffer.fill", target, offset, length, BufferUsage.TRANSFER_TARGET)
        check_fill_alignment(ref.offset, ref.length or 0, len(data), "CommandBuffer.fill")
        self.commands.append(FillCmd(ref, data))

    def update(self, target: Buffer | int, data: bytes, offset: int = 0) -> None:
        """Copy host bytes (captured now) into ``target`` at ``offset`` when executed."""
        self._recording("update")
        try:
            payload = bytes(memoryview(data).cast("B"))
        except TypeError:
            raise UsageError(
                f"CommandBuffer.update: data must be bytes-like, got {type(data).__name__}"
            ) from None
        ref = self._ref(
            "CommandBuffer.update", target, offset, len(payload), BufferUsage.TRANSFER_TARGET
        )
        self.commands.append(UpdateCmd(payload, ref))

    def copy(
        self,
        source: Buffer | int,
        target: Buffer | int,
        source_offset: int = 0,
        target_offset: int = 0,
        length: int | None = None,
    ) -> None:
        """Copy ``length`` bytes (default: the rest of a concrete source) between buffers."""
        self._recording("copy")
        src = self._ref(
            "CommandBuffer.copy source", source, source_offset, length, BufferUsage.TRANSFER_SOURCE
        )
        if src.length is None:
            raise UsageError(
                "CommandBuffer.copy: length is required when the source is a binding-table slot"
            )
        dst = self._ref(
            "CommandBuffer.copy target",
            target,
            target_offset,
            src.length,
            BufferUsage.TRANSFER_TARGET,
        )
        self.commands.append(CopyCmd(src, dst))

    def dispatch(
        self,
        executable: LocalExecutable,
        entry_point: int | str,
        workgroup_count: tuple[int, int, int],
        bindings: Any = (),
        constants: Any = (),
    ) -> None:
        """Run ``entry_point`` of ``executable`` over ``workgroup_count`` workgroups."""
        self._recording("dispatch")
        eps = getattr(executable, "entry_points", None)
        if eps is None:
            raise UsageError(
                f"CommandBuffer.dispatch: expected a prepared executable, got "
                f"{type(executable).__name__}"
            )
        if isinstance(entry_point, str):
            names = [ep.name for ep in eps]
            if entry_point not in names:
                raise UsageError(
                    f"CommandBuffer.dispatch: executable has no entry point "
                    f"{entry_point!r}; it has {names}"
                )
            entry = names.index(entry_point)
        elif isinstance(entry_point, int) and 0 <= entry_point < len(eps):
            entry = entry_point
        else:
            raise UsageError(
                f"CommandBuffer.dispatch: entry point {entry_point!r} out of range; "
                f"the executable has {len(eps)}"
            )
        ep = eps[entry]
        wg = tuple(workgroup_count)
        if len(wg) != 3 or any(not isinstance(n, int) or n < 0 for n in wg):
            raise UsageError(
                f"CommandBuffer.dispatch {ep.name}: workgroup_count must be three "
                f"non-negative ints (x, y, z), got {workgroup_count!r}"
            )
        bindings = tuple(bindings)
        if len(bindings) != ep.binding_count:
            raise UsageError(
                f"CommandBuffer.dispatch {ep.name}: the entry point takes "
                f"{ep.binding_count} bindings, got {len(bindings)}"
            )
        refs = []
        for i, b in enumerate(bindings):
            what = f"CommandBuffer.dispatch {ep.name} binding {i}"
            if isinstance(b, tuple):
                if len(b) != 3:
                    raise UsageError(
                        f"{what}: expected (buffer_or_slot, offset, length), got {b!r}"
                    )
                refs.append(self._ref(what, b[0], b[1], b[2], BufferUsage.DISPATCH_STORAGE))
            else:
                refs.append(self._ref(what, b, 0, None, BufferUsage.DISPATCH_STORAGE))
        consts = tuple(constants)
        if len(consts) != ep.constant_count:
            raise UsageError(
                f"CommandBuffer.dispatch {ep.name}: the entry point takes "
                f"{ep.constant_count} constants, got {len(consts)}"
            )
        words = []
        for c in consts:
            if not isinstance(c, int) or not -(1 << 31) <= c < (1 << 32):
                raise UsageError(
                    f"CommandBuffer.dispatch {ep.name}: constants are 32-bit ints, got {c!r}"
                )
            words.append(c & 0xFFFFFFFF)
        self.commands.append(DispatchCmd(executable, entry, wg, tuple(refs), tuple(words)))

    def execution_barrier(self) -> None:
        """Commands after the barrier see the results of commands before it."""
        self._recording("execution_barrier")
        self.commands.append(BarrierCmd())
