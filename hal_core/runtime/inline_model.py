"""The inline execution model: the host program calls kernels directly.

For modules compiled with ``hal compile --execution-model=inline`` (IREE's inline-static): no
command buffers, semaphores or queues. Executables are loaded straight through the registry's
executable loaders, and each host op becomes a closure over ``slots``, the per-call list of
1-D uint8 arrays (inputs, outputs, the transient arena, then the constants), built by the local
command buffer's step builders (:func:`hal_core.hal.local.command_buffer.build_step`), so both
binding kinds of the local dispatch ABI work the same way here. A dispatch is one
``LocalExecutable.run(entry, workgroup_count, 0, total, bindings, constants)`` on the calling
thread. Calls of one function are serialised by a lock (the arena is reused).
"""

from __future__ import annotations

from typing import Any

from hal_core.errors import HalError, IncompatibleModuleError
from hal_core.hal.allocator import aligned_host_array
from hal_core.module.model import Barrier, Copy, Dispatch, Fill, Function, Module, Slot
from hal_core.runtime.loaded import HostFunction, LoadedFunction, wrap_execution_error
from hal_core.runtime.memory import allocation_failed, binding_alignment, is_aligned, wrappable


def build_inline_functions(module: Module, variants: list[Any], registry: Any
                           ) -> dict[str, LoadedFunction]:
    import numpy as np

    from hal_core.hal.executable_cache import as_entry_point
    from hal_core.hal.local.executable_cache import loader_formats

    loadable = set(loader_formats(registry)[0])
    executables = []
    loaders: dict[str, Any] = {}
    for exe, v in zip(module.executables, variants):
        if v.format not in loadable:
            raise IncompatibleModuleError(
                f"module {module.name!r} uses the inline execution model, which runs kernels on "
                f"the host through executable loaders, but executable {exe.name!r} chose format "
                f"{v.format!r}, which no loader handles (loaders: {', '.join(sorted(loadable))}); "
                f"load it on local-sync or local-task, or compile without "
                f"--execution-model=inline")
        if v.format not in loaders:
            loaders[v.format] = registry.create_loader(v.format)
        executables.append(loaders[v.format].load(
            v.payload, tuple(as_entry_point(ep) for ep in v.entry_points)))
    constants = []
    for c in module.constants:
        data = np.frombuffer(c.contents(), dtype=np.uint8)
        if data.size and not is_aligned(data):
            aligned = aligned_host_array(data.size)
            aligned[:] = data
            aligned.flags.writeable = False
            data = aligned
        constants.append(data)
    return {f.name: InlineFunction(module.name, f, executables, variants, constants)
            for f in module.functions}


class _Inline:
    """The "device" the local command buffer's step builders dispatch through: every
    workgroup of a dispatch in one ``run`` call on the calling thread."""

    @staticmethod
    def dispatch_tiles(executable: Any, entry: int, workgroup_count: tuple[int, int, int],
                       total: int, bindings: Any, constants: Any) -> None:
        executable.run(entry, workgroup_count, 0, total, bindings, constants)


def _command(op: Any, slot_of: Any, executables: list[Any], variants: list[Any]) -> Any:
    """Host op ``op`` as the local command buffer's command on slot references, or None
    when it does nothing."""
    from hal_core.hal.command_buffer import CopyCmd, DispatchCmd, FillCmd, Ref

    def ref(r: Any) -> Ref:
        return Ref(None, slot_of(r), r.offset, r.length)

    if isinstance(op, Dispatch):
        ep = variants[op.executable].entry_points[op.entry_point]
        wg = tuple(ep.workgroup_count)
        if not wg[0] * wg[1] * wg[2]:
            return None
        words = tuple(c & 0xFFFFFFFF for c in op.constants)
        return DispatchCmd(executables[op.executable], op.entry_point, wg,
                           tuple(ref(r) for r in op.bindings), words)
    if isinstance(op, Copy):
        return CopyCmd(ref(op.source), ref(op.target)) if op.source.length else None
    if isinstance(op, Fill):
        return FillCmd(ref(op.target), bytes(op.pattern)) if op.target.length else None
    assert isinstance(op, Barrier)
    return None  # kernels run one after another on this thread: nothing to order


class InlineFunction(HostFunction):
    def __init__(self, module_name: str, function: Function, executables: list[Any],
                 variants: list[Any], constants: list[Any]) -> None:
        super().__init__(module_name, function)
        n_in, n_out = len(function.inputs), len(function.outputs)
        arena = n_in + n_out
        first_const = arena + 1
        sizes = ([t.byte_size for t in function.inputs] + [t.byte_size for t in function.outputs]
                 + [function.transient_size] + [c.size for c in constants])

        def slot_of(ref: Any) -> int:
            base = {Slot.INPUT: 0, Slot.OUTPUT: n_in, Slot.TRANSIENT: arena,
                    Slot.CONSTANT: first_const}[ref.slot]
            return base if ref.slot is Slot.TRANSIENT else base + ref.index

        from hal_core.hal.local.command_buffer import build_step, needs_addresses

        steps, names = [], []
        self._needs_addresses = False
        for n, op in enumerate(function.program):
            cmd = _command(op, slot_of, executables, variants)
            step = None if cmd is None else build_step(cmd, _Inline, sizes)
            if step is not None:
                steps.append(step)
                names.append(f"op {n} ({type(op).__name__.lower()})")
                self._needs_addresses |= needs_addresses(cmd)
        self._steps = tuple(steps)
        self._step_names = tuple(names)
        try:
            arena = aligned_host_array(function.transient_size)
        except (MemoryError, ValueError) as e:
            raise allocation_failed(f"{module_name}.{self.name} transient arena",
                                    function.transient_size, e) from e
        self._fixed = (arena, *constants)
        self._alignment = binding_alignment(function, executables)

    def _new_staging(self, size: int) -> tuple[Any, Any]:
        raw = aligned_host_array(size)
        return raw, raw

    def __call__(self, *args: Any) -> Any:
        with self._lock:
            slots = [a.reshape(-1).view("u1") if wrappable(a, self._alignment)
                     else self._staged(i, a)
                     for i, a in enumerate(self._checked_arguments(args))]
            try:
                outs = self._memory.take_all([size for size, _, _ in self._out_specs])
            except (MemoryError, ValueError) as e:
                raise allocation_failed(f"{self.name} results", sum(
                    size for size, _, _ in self._out_specs), e) from e
            slots += outs
            slots += self._fixed
            if self._needs_addresses:
                from hal_core.hal.local.command_buffer import BoundSlots, slot_addresses

                slots = slot_addresses(BoundSlots(slots))
            i = 0
            try:
                for step in self._steps:
                    step(slots)
                    i += 1
            except Exception as e:  # noqa: BLE001 - every kernel failure becomes a hal error
                cause = e if isinstance(e, HalError) else _wrapped(e, self._step_names[i])
                err = wrap_execution_error(self.name, self._module_name, "the host (inline)",
                                           cause)
                raise err from err.__cause__
        return self._results(outs)

    def _release(self) -> None:
        self._steps = ()
        self._fixed = ()


def _wrapped(error: BaseException, what: str) -> HalError:
    from hal_core.errors import HalRuntimeError

    wrapped = HalRuntimeError(f"{what} failed: {type(error).__name__}: {error}")
    wrapped.__cause__ = error
    return wrapped
