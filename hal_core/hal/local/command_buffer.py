"""The local command buffer: recorded commands compiled once into a tuple of closures.

Each step is ``step(slots)``, where ``slots`` holds the binding table resolved to 1-D uint8
arrays. Concrete buffers are sliced at ``end()``; slot references slice per execution. An
executable with ``binding_kind = "address"`` gets binding base addresses instead (a ctypes
``c_void_p`` array): the slots' addresses are taken once per submission in :meth:`bind`. Both
local drivers execute the same steps; only dispatch differs (``device.dispatch_tiles``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from hal_core.errors import HalRuntimeError, UsageError
from hal_core.hal.buffer import Buffer, check_fill_alignment
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

Step = Callable[[list], None]


def _accessor(ref: Ref, sizes: Sequence[int] | None = None) -> Callable[[list], Any]:
    """A function slots -> the uint8 array the reference names (``sizes``: the slots' sizes
    when they are known when recording, so that a whole-slot reference needs no slice)."""
    if ref.buffer is not None:
        view = ref.buffer._storage[ref.offset : ref.offset + ref.length]
        return lambda slots: view
    slot, start = ref.slot, ref.offset
    if sizes is not None and start == 0 and ref.length in (None, sizes[slot]):
        return lambda slots: slots[slot]
    if ref.length is None:
        return lambda slots: slots[slot][start:]
    stop = start + ref.length
    return lambda slots: slots[slot][start:stop]


def _fill_step(cmd: FillCmd, sizes: Sequence[int] | None = None) -> Step:
    get, pattern = _accessor(cmd.target, sizes), cmd.pattern
    size = len(pattern)
    if size == 1:
        byte = pattern[0]
        return lambda slots: get(slots).fill(byte)

    import numpy as np

    row = np.frombuffer(pattern, dtype=np.uint8)  # built once at record time, not per run

    def fill(slots: list) -> None:
        region = get(slots)
        if region.shape[0] % size:
            check_fill_alignment(cmd.target.offset, region.shape[0], size, "fill")
        region.reshape(-1, size)[:] = row

    return fill


def _update_step(cmd: UpdateCmd, sizes: Sequence[int] | None = None) -> Step:
    import numpy as np

    get, data = _accessor(cmd.target, sizes), np.frombuffer(cmd.data, dtype=np.uint8)

    def update(slots: list) -> None:
        get(slots)[:] = data

    return update


def _copy_step(cmd: CopyCmd, sizes: Sequence[int] | None = None) -> Step:
    src, dst = _accessor(cmd.source, sizes), _accessor(cmd.target, sizes)

    def copy(slots: list) -> None:
        dst(slots)[:] = src(slots)

    return copy


def _address_dispatch_step(cmd: DispatchCmd, device: Any) -> Step:
    """A dispatch of an executable with ``binding_kind = "address"``: each binding becomes
    its base address (an int in a ctypes ``c_void_p`` array), resolved once per execution from
    the slots' base addresses (:attr:`BoundSlots.addresses`); push constants are a
    ``c_uint32`` array built once here (None when there are none)."""
    import ctypes

    x, y, z = cmd.workgroup_count
    total = x * y * z
    run_tiles = device.dispatch_tiles
    executable, entry, wg = cmd.executable, cmd.entry, cmd.workgroup_count
    consts = (ctypes.c_uint32 * len(cmd.constants))(*cmd.constants) if cmd.constants else None
    array_type = ctypes.c_void_p * len(cmd.bindings)
    fixed: list[int | None] = []
    slotted: list[tuple[int, int, int]] = []  # (binding index, slot, offset)
    # Native code gets bare addresses and cannot see a too-small buffer; an executable that
    # states the bytes each binding must hold (binding_sizes) has them checked here instead.
    sizes = getattr(executable, "binding_sizes", None)
    need = tuple(sizes(entry)) if callable(sizes) else ()
    short: list[str] = []
    checks: list[tuple[int, int, int, int | None, int]] = []  # (index, slot, offset, len, need)
    for i, ref in enumerate(cmd.bindings):
        n = need[i] if i < len(need) else 0
        if ref.buffer is not None:
            fixed.append(_address(ref.buffer._storage) + ref.offset)
            have = ref.length if ref.length is not None else \
                ref.buffer._storage.shape[0] - ref.offset
            if have < n:
                short.append(f"binding {i} holds {have} bytes, the kernel accesses {n}")
        else:
            fixed.append(None)
            slotted.append((i, ref.slot, ref.offset))
            if n:
                checks.append((i, ref.slot, ref.offset, ref.length, n))
    if total == 0:
        return lambda slots: None
    if short:
        def refuse(slots: list) -> None:
            raise HalRuntimeError(f"dispatch of entry point {entry}: {'; '.join(short)}; bind "
                                  "larger buffer ranges")
        return refuse
    if not slotted:
        bindings = array_type(*fixed)
        return lambda slots: run_tiles(executable, entry, wg, total, bindings, consts)

    def dispatch(slots: list) -> None:
        addresses = slots.addresses
        bindings = array_type(*fixed)
        for i, slot, offset in slotted:
            bindings[i] = addresses[slot] + offset
        for i, slot, offset, length, n in checks:
            have = length if length is not None else slots[slot].shape[0] - offset
            if have < n:
                raise HalRuntimeError(f"dispatch of entry point {entry}: binding {i} holds "
                                      f"{have} bytes, the kernel accesses {n}; bind a larger "
                                      "buffer range")
        run_tiles(executable, entry, wg, total, bindings, consts)

    return dispatch


def _address(array: Any) -> int:
    return array.__array_interface__["data"][0]


class BoundSlots(list):
    """A binding table resolved for one execution: 1-D uint8 arrays, and (when an
    address-mode dispatch needs them) their base addresses."""

    __slots__ = ("addresses",)


def _dispatch_step(cmd: DispatchCmd, device: Any, sizes: Sequence[int] | None = None) -> Step:
    if getattr(cmd.executable, "binding_kind", "array") == "address":
        return _address_dispatch_step(cmd, device)
    x, y, z = cmd.workgroup_count
    total = x * y * z
    getters = tuple(_accessor(r, sizes) for r in cmd.bindings)
    run_tiles = device.dispatch_tiles
    executable, entry, wg, consts = cmd.executable, cmd.entry, cmd.workgroup_count, cmd.constants
    if total == 0:
        return lambda slots: None
    if sizes is not None and all(
            r.buffer is None and r.offset == 0 and r.length in (None, sizes[r.slot])
            for r in cmd.bindings):
        index = tuple(r.slot for r in cmd.bindings)  # whole slots: no slicing, no getters
        return lambda slots: run_tiles(executable, entry, wg, total,
                                       [slots[i] for i in index], consts)

    def dispatch(slots: list) -> None:
        run_tiles(executable, entry, wg, total, [g(slots) for g in getters], consts)

    return dispatch


def build_step(cmd: Any, device: Any, sizes: Sequence[int] | None = None) -> Step | None:
    """The closure ``step(slots)`` that performs recorded command ``cmd``, or None when it
    does nothing (a barrier: steps run in order, and each dispatch joins its tiles).

    ``device.dispatch_tiles(executable, entry, workgroup_count, total, bindings, constants)``
    runs a dispatch's workgroups; ``sizes`` are the slots' byte sizes when fixed in advance
    (the inline execution model), letting whole-slot references skip slicing. Shared by
    :class:`LocalCommandBuffer` and :mod:`hal_core.runtime.inline_model`.
    """
    if isinstance(cmd, BarrierCmd):
        return None
    if isinstance(cmd, FillCmd):
        return _fill_step(cmd, sizes)
    if isinstance(cmd, UpdateCmd):
        return _update_step(cmd, sizes)
    if isinstance(cmd, CopyCmd):
        return _copy_step(cmd, sizes)
    return _dispatch_step(cmd, device, sizes)


def needs_addresses(cmd: Any) -> bool:
    """Whether ``cmd`` is a dispatch of an address-mode executable (slots need addresses)."""
    return isinstance(cmd, DispatchCmd) and getattr(cmd.executable, "binding_kind",
                                                    "array") == "address"


def slot_addresses(slots: BoundSlots) -> BoundSlots:
    """Record the base address of every slot array on ``slots`` (once per execution)."""
    slots.addresses = [_address(a) for a in slots]
    return slots


def _describe(cmd: Any) -> str:
    if isinstance(cmd, DispatchCmd):
        name = cmd.executable.entry_points[cmd.entry].name
        return f"dispatch of {getattr(cmd.executable, 'format', '?')} entry point {name!r}"
    return type(cmd).__name__.removesuffix("Cmd").lower()


class LocalCommandBuffer(CommandBuffer):
    """A command buffer of the local drivers (host memory, closures)."""

    def _compile(self) -> None:
        steps: list[Step] = []
        names: list[str] = []
        extents = [0] * self.slots_used
        roots: dict[int, Buffer] = {}
        self.needs_addresses = False
        for index, cmd in enumerate(self.commands):
            if isinstance(cmd, BarrierCmd):
                # Steps run one after another on one thread and each dispatch joins its
                # tiles before returning, so a barrier has nothing left to order.
                continue
            for ref in command_refs(cmd):
                if ref.slot is not None:
                    end = ref.offset + (ref.length or 0)
                    extents[ref.slot] = max(extents[ref.slot], end)
                else:
                    roots[id(ref.buffer.root)] = ref.buffer.root
            if needs_addresses(cmd):
                _check_disjoint(cmd, index)
                self.needs_addresses = True
            steps.append(build_step(cmd, self.device))
            names.append(f"command {index} ({_describe(cmd)})")
        self.steps: tuple[Step, ...] = tuple(steps)
        self.step_names = tuple(names)
        self.slot_extents = tuple(extents)
        self.recorded_buffers = tuple(roots.values())

    def bind(self, table: Sequence[Any] | None) -> list:
        """Resolve a binding table to the uint8 arrays the steps index (validating sizes)."""
        for root in self.recorded_buffers:
            if root._released:
                raise UsageError(
                    "queue_execute: a buffer recorded in this command buffer was released "
                    "(queue_dealloca or release()); record it again with live buffers"
                )
        if not self.slots_used:
            return BoundSlots()
        slots = BoundSlots()
        for i, extent in enumerate(self.slot_extents):
            entry = table[i]
            if isinstance(entry, Buffer):
                if entry._root._released:
                    entry.check_range(0, None, f"binding table slot {i}")
                array = entry._storage
            elif isinstance(entry, tuple) and len(entry) == 3 and isinstance(entry[0], Buffer):
                off, length = entry[0].check_range(entry[1], entry[2], f"binding table slot {i}")
                array = entry[0]._storage[off : off + length]
            else:
                raise UsageError(
                    f"binding table slot {i}: expected a Buffer or (Buffer, "
                    f"offset, length), got {type(entry).__name__}"
                )
            if array.shape[0] < extent:
                raise UsageError(
                    f"binding table slot {i}: the command buffer uses bytes up to "
                    f"{extent} of it but the bound buffer has {array.shape[0]}; "
                    f"bind a larger buffer"
                )
            slots.append(array)
        if self.needs_addresses:
            slot_addresses(slots)
        return slots

    def execute(self, slots: list) -> None:
        """Run every step; a failure names the command that raised."""
        i = 0
        try:
            for step in self.steps:
                step(slots)
                i += 1
        except HalRuntimeError:
            raise
        except Exception as e:
            err = HalRuntimeError(f"{self.step_names[i]} failed: {type(e).__name__}: {e}")
            raise err from e


def _check_disjoint(cmd: DispatchCmd, index: int) -> None:
    """Address-mode executables (native code) may treat bindings as noalias: refuse, when
    recording, two bindings of one dispatch that overlap in one buffer or one slot when either
    is written. An executable that says which bindings an entry point writes
    (``written_bindings(entry)``) may have read-only bindings share memory (one constant bound
    twice); without it every binding counts as written. (Distinct slots bound to one buffer at
    submission are the binder's promise: the runtime binds distinct memory to every slot it
    writes.)"""
    written_of = getattr(cmd.executable, "written_bindings", None)
    written = set(written_of(cmd.entry)) if callable(written_of) else None
    spans = []
    for i, ref in enumerate(cmd.bindings):
        if ref.buffer is not None:
            key, start = id(ref.buffer.root), ref.buffer.byte_offset + ref.offset
        else:
            key, start = ("slot", ref.slot), ref.offset
        end = None if ref.length is None else start + ref.length
        spans.append((key, start, end, i))
    for a in range(len(spans)):
        ka, sa, ea, ia = spans[a]
        for b in range(a + 1, len(spans)):
            kb, sb, eb, ib = spans[b]
            if ka != kb or ea == sa or eb == sb:
                continue
            if written is not None and ia not in written and ib not in written:
                continue  # two reads of the same bytes alias harmlessly
            if (eb is None or sa < eb) and (ea is None or sb < ea):
                name = cmd.executable.entry_points[cmd.entry].name
                raise UsageError(
                    f"command {index} (dispatch of {name!r}): bindings {ia} and {ib} overlap "
                    f"in one {'slot' if isinstance(ka, tuple) else 'buffer'}; the local "
                    f"dispatch ABI promises address-mode executables non-overlapping bindings; "
                    f"bind disjoint ranges or separate buffers")


