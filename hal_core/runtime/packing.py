"""Load-time packing of module constants (GEMM/conv weights) into a target's own layout.

A target that finds a kernel operand marked ``constant`` (kernel IR) may declare a
:class:`~hal_core.module.model.ConstantPack` on the entry point: "before my first dispatch,
run my load-time entry point on that constant and bind what it writes instead". This module
does that once per load, before the execution models see the module:

1. for every dispatch of every function, every pack its chosen variant's entry point declares
   is keyed by (executable, packing entry point, constant region); each key is packed once, by
   one dispatch of the packing entry point with bindings (constant region, packed buffer);
2. the packed bytes become new module constants, appended after the file's own, and the
   dispatches bind them in place of the originals.

The execution models then treat packed constants like any other constant. Packing runs through
the device (a one-shot command buffer) in the async model and through the executable loaders
in the inline model; each prepares the variant once here, apart from the model's own copy.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from hal_core.errors import HalError, HalRuntimeError
from hal_core.module.model import (
    BufferRef,
    Constant,
    Dispatch,
    ExecutionModel,
    Module,
    Slot,
    host_op_refs,
)

log = logging.getLogger(__name__)


def pack_constants(module: Module, variants: list[Any], device: Any, registry: Any) -> Module:
    """``module`` with its constant packs done for the chosen ``variants`` (one per
    executable); the module itself when no chosen variant declares a pack."""
    if not any(ep.constant_packs for v in variants for ep in v.entry_points):
        return module
    runner = _Runner(module, variants, device, registry)
    constants = list(module.constants)
    made: dict[tuple[int, int, int, int, int], int] = {}
    functions = []
    for fn in module.functions:
        program = []
        for op in fn.program:
            if isinstance(op, Dispatch):
                ep = variants[op.executable].entry_points[op.entry_point]
                bindings = list(op.bindings)
                for p in ep.constant_packs:
                    ref = bindings[p.binding]  # a CONSTANT region (the module checks say so)
                    key = (op.executable, p.entry_point, ref.index, ref.offset, ref.length)
                    if key not in made:
                        # a splat is filled here for this pack only (not kept: memory)
                        src = memoryview(module.constants[ref.index].contents()).cast("B")[
                            ref.offset:ref.offset + ref.length]
                        data = runner.run(op.executable, p.entry_point, src, p.packed_size)
                        made[key] = len(constants)
                        name = f"{module.constants[ref.index].name}.packed{p.entry_point}"
                        constants.append(Constant(name, data))
                    bindings[p.binding] = BufferRef(Slot.CONSTANT, made[key], 0, p.packed_size)
                op = dataclasses.replace(op, bindings=tuple(bindings))
            program.append(op)
        functions.append(dataclasses.replace(fn, program=tuple(program)))
    # An original that every dispatch now reads packed need not become a device buffer.
    used = {r.index for fn in functions for op in fn.program for r in host_op_refs(op)
            if r.slot is Slot.CONSTANT}
    for _, _, index, _, _ in made:
        if index not in used:
            constants[index] = Constant(constants[index].name, b"")
    log.debug("module %r: packed %d constant(s) at load", module.name, len(made))
    return dataclasses.replace(module, functions=tuple(functions), constants=tuple(constants))


class _Runner:
    """Runs packing entry points, preparing each executable once."""

    def __init__(self, module: Module, variants: list[Any], device: Any, registry: Any) -> None:
        self.module, self.variants, self.device, self.registry = module, variants, device, registry
        self.inline = module.execution_model is ExecutionModel.INLINE
        self._prepared: dict[int, Any] = {}

    def _executable(self, index: int) -> Any:
        exe = self._prepared.get(index)
        if exe is None:
            v = self.variants[index]
            if self.inline:
                from hal_core.hal.executable_cache import as_entry_point

                loader = self.registry.create_loader(v.format)
                exe = loader.load(v.payload, tuple(as_entry_point(e) for e in v.entry_points))
            else:
                exe = self.device.executable_cache.prepare(v.format, v.payload,
                                                           v.entry_points)
            self._prepared[index] = exe
        return exe

    def run(self, index: int, entry: int, src: memoryview, packed_size: int) -> Any:
        import numpy as np

        from hal_core.hal.allocator import aligned_host_array

        v = self.variants[index]
        wg = tuple(v.entry_points[entry].workgroup_count)
        what = (f"module {self.module.name!r}: packing a constant with entry point {entry} "
                f"({v.entry_points[entry].name!r}) of {v.target_backend}/{v.format}")
        exe = self._executable(index)
        try:
            if self.inline:
                source = aligned_host_array(src.nbytes)
                source[:] = np.frombuffer(src, np.uint8)
                out = aligned_host_array(packed_size)
                total = wg[0] * wg[1] * wg[2]
                if total:
                    exe.run(entry, wg, 0, total, [source, out], ())
            else:
                out = self._on_device(exe, entry, wg, src, packed_size)
        except HalError as e:
            raise HalRuntimeError(f"{what} failed: {e}") from e
        except Exception as e:  # noqa: BLE001 - a kernel failure becomes a hal error
            raise HalRuntimeError(f"{what} failed: {type(e).__name__}: {e}") from e
        out.flags.writeable = False
        return memoryview(out)

    def _on_device(self, exe: Any, entry: int, wg: tuple, src: memoryview, size: int) -> Any:
        """One dispatch on the device: upload, pack, read back (queue_write / queue_read, so
        memory the host cannot map works too)."""
        import numpy as np

        from hal_core.hal.allocator import aligned_host_array
        from hal_core.hal.command_buffer import CommandBufferMode

        dev = self.device
        source = dev.allocator.allocate_buffer(max(src.nbytes, 1))
        target = dev.allocator.allocate_buffer(max(size, 1))
        try:
            sem = dev.create_semaphore(0 if src.nbytes else 1)  # nothing to upload: done
            if src.nbytes:
                dev.queue_write((), ((sem, 1),), np.frombuffer(src, np.uint8), source)
            cb = dev.create_command_buffer(CommandBufferMode.ONE_SHOT)
            cb.begin()
            cb.dispatch(exe, entry, wg, [(source, 0, src.nbytes), (target, 0, size)], ())
            cb.end()
            dev.queue_execute(((sem, 1),), ((sem, 2),), (cb,))
            out = aligned_host_array(size)
            if size:
                dev.queue_read(((sem, 2),), ((sem, 3),), target, 0, out)
            sem.wait(3 if size else 2)
            return out
        finally:
            source.release()
            target.release()
