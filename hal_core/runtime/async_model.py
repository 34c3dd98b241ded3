"""The async execution model: a reusable command buffer per function, a timeline semaphore.

At load, each function's host program is recorded once into a REUSABLE command buffer whose
binding table has one slot per input, one per output and one for the transient arena;
constants are recorded as concrete buffers (aliasing the module's memory when the allocator can
wrap host memory and the data is 64-byte aligned, else copied once). A call then:

1. checks the arguments (shape and dtype; see :mod:`hal_core.runtime.arguments`);
2. binds each input: the caller's array itself when it is C-contiguous, not tiny, and aligned
   as the kernels need (64 bytes by the dispatch ABI, less when the executables declare a
   smaller ``binding_alignment``), else a copy in a staging buffer kept by the function;
3. allocates the outputs (fresh each call: they are returned to the caller;
   :mod:`hal_core.runtime.memory`);
4. ``queue_execute`` signalling the function's timeline semaphore, and waits on it;
5. returns the outputs as numpy views of their buffers (no copy).

Calls of one function are serialised by a lock, since the staging buffers and the transient
arena are reused across calls.
"""

from __future__ import annotations

from typing import Any

from hal_core.errors import HalError, UsageError
from hal_core.hal.allocator import BufferUsage, MemoryType
from hal_core.hal.command_buffer import CommandBufferMode
from hal_core.module.model import (
    Barrier,
    Copy,
    Dispatch,
    Fill,
    Function,
    Module,
    Slot,
    host_op_refs,
)
from hal_core.runtime.loaded import HostFunction, LoadedFunction, wrap_execution_error
from hal_core.runtime.memory import allocation_failed, binding_alignment, is_aligned, wrappable

_READ_ONLY = BufferUsage.TRANSFER_SOURCE | BufferUsage.DISPATCH_STORAGE | BufferUsage.MAPPING


def host_visible(allocator: Any) -> bool:
    """Whether kernels' memory can be mapped by the host (else data moves by queue transfers).

    An allocator whose default memory type is not host visible (a discrete GPU, whose
    host-visible window is slow to read) prefers queue transfers even when it could map.
    """
    default = getattr(allocator, "default_memory_type", None)
    if default is not None and not default & MemoryType.HOST_VISIBLE:
        return False
    return allocator.query_compatibility(MemoryType.HOST_VISIBLE,
                                         BufferUsage.DISPATCH_STORAGE | BufferUsage.MAPPING)


def mapped_type(allocator: Any) -> MemoryType:
    """The memory type for buffers the host maps: the device's default, made host visible
    (DEVICE_LOCAL | HOST_VISIBLE unless the allocator says otherwise)."""
    default = getattr(allocator, "default_memory_type",
                      MemoryType.DEVICE_LOCAL | MemoryType.HOST_VISIBLE)
    return default | MemoryType.HOST_VISIBLE


def device_buffer(allocator: Any, size: int) -> Any:
    """Device memory for kernels that queue transfers can fill and read back."""
    return allocator.allocate_buffer(size, MemoryType.DEVICE_LOCAL,
                                     BufferUsage.TRANSFER | BufferUsage.DISPATCH_STORAGE)


def constant_buffers(module: Module, device: Any) -> list[Any]:
    """A device buffer per module constant, aliasing the module's bytes where possible.

    Memory the host cannot map is filled with ``queue_write`` (waited for here, at load).
    """
    import numpy as np

    allocator = device.allocator
    wrap = getattr(allocator, "wrap_host", None) if getattr(allocator, "can_wrap_host",
                                                            False) else None
    mappable = wrap is not None or host_visible(allocator)
    buffers = []
    writes = None
    for c in module.constants:
        data = np.frombuffer(c.contents(), dtype=np.uint8)
        if wrap is not None and (data.size == 0 or is_aligned(data)):
            buffers.append(wrap(data, _READ_ONLY))
        elif mappable:
            buf = allocator.allocate_buffer(data.size, mapped_type(allocator))
            buf.write(data)
            buffers.append(buf)
        else:
            buf = device_buffer(allocator, data.size)
            if writes is None:
                writes = device.create_semaphore(0)
            value = writes.query()
            device.queue_write([(writes, value)], [(writes, value + 1)], data, buf)
            writes.wait(value + 1)
            buffers.append(buf)
    return buffers


def build_async_functions(module: Module, variants: list[Any], device: Any
                          ) -> dict[str, LoadedFunction]:
    cache = device.executable_cache
    executables = [cache.prepare(v.format, v.payload, v.entry_points) for v in variants]
    constants = constant_buffers(module, device)
    return {f.name: AsyncFunction(module.name, f, device, executables, variants, constants)
            for f in module.functions}


def _uses_arena(function: Function) -> bool:
    return any(r.slot is Slot.TRANSIENT for op in function.program for r in host_op_refs(op))


class AsyncFunction(HostFunction):
    def __init__(self, module_name: str, function: Function, device: Any,
                 executables: list[Any], variants: list[Any], constants: list[Any]) -> None:
        super().__init__(module_name, function)
        self._device = device
        n_in, n_out = len(function.inputs), len(function.outputs)
        # An empty intermediate lives in the arena with length 0, so a program may name the
        # arena although it takes no bytes: it still needs a (zero-size) buffer to bind.
        arena_slot = n_in + n_out if function.transient_size or _uses_arena(function) else None
        capacity = n_in + n_out + (arena_slot is not None)

        def target(ref: Any) -> tuple[Any, int, int]:
            if ref.slot is Slot.INPUT:
                return ref.index, ref.offset, ref.length
            if ref.slot is Slot.OUTPUT:
                return n_in + ref.index, ref.offset, ref.length
            if ref.slot is Slot.CONSTANT:
                return constants[ref.index], ref.offset, ref.length
            return arena_slot, ref.offset, ref.length

        cb = device.create_command_buffer(CommandBufferMode.REUSABLE, binding_capacity=capacity)
        cb.begin()
        for op in function.program:
            if isinstance(op, Dispatch):
                ep = variants[op.executable].entry_points[op.entry_point]
                cb.dispatch(executables[op.executable], op.entry_point,
                            tuple(ep.workgroup_count), [target(b) for b in op.bindings],
                            op.constants)
            elif isinstance(op, Copy):
                src, so, n = target(op.source)
                dst, do, _ = target(op.target)
                if n:
                    cb.copy(src, dst, so, do, n)
            elif isinstance(op, Fill):
                dst, do, n = target(op.target)
                if n:
                    cb.fill(dst, op.pattern, do, n)
            elif isinstance(op, Barrier):
                cb.execution_barrier()
        cb.end()
        self._cb = (cb,)

        allocator = device.allocator
        self._wrap = (allocator.wrap_host if getattr(allocator, "can_wrap_host", False)
                      else None)
        self._allocator = allocator
        self._alignment = binding_alignment(function, executables)
        # Memory the host cannot map: arguments and results move by queue transfers into
        # device buffers kept for the function's lifetime.
        self._transfer = self._wrap is None and not host_visible(allocator)
        self._device_inputs: list[Any] = [None] * self._n_in
        self._device_outputs: list[Any] = []
        try:
            if self._transfer:
                self._device_outputs = [device_buffer(allocator, t.byte_size)
                                        for t in function.outputs]
            self._arena = (allocator.allocate_buffer(function.transient_size)
                           if arena_slot is not None else None)
        except (MemoryError, ValueError) as e:
            raise allocation_failed(f"{module_name}.{self.name} transient arena",
                                    function.transient_size, e) from e
        self._semaphore = device.create_semaphore(0)
        self._value = 0

    def _new_staging(self, size: int) -> tuple[Any, Any]:
        buf = self._allocator.allocate_buffer(size, mapped_type(self._allocator))
        return buf, buf.map()

    def _call_transfer(self, args: tuple[Any, ...]) -> Any:
        """A call on memory the host cannot map: queue_write each argument, execute,
        queue_read each result, each step waiting on the previous one (call under lock)."""
        device, sem = self._device, self._semaphore
        value = self._value
        arrays = self._checked_arguments(args)
        try:
            table = []
            for i, a in enumerate(arrays):
                buf = self._device_inputs[i]
                if buf is None:
                    buf = self._device_inputs[i] = device_buffer(self._allocator, a.nbytes)
                device.queue_write([(sem, value)], [(sem, value + 1)], a, buf)
                value += 1
                table.append(buf)
            table += self._device_outputs
            if self._arena is not None:
                table.append(self._arena)
            device.queue_execute([(sem, value)], [(sem, value + 1)], self._cb, (table,))
            value += 1
            results = []
            for buf, (size, _, _) in zip(self._device_outputs, self._out_specs):
                try:
                    raw = self._memory.take(size, results)
                except (MemoryError, ValueError) as e:
                    raise allocation_failed(f"{self.name} result", size, e) from e
                device.queue_read([(sem, value)], [(sem, value + 1)], buf, 0, raw)
                value += 1
                results.append(raw)
        except BaseException:
            # Some transfers may have been queued: this semaphore's values are spoken for.
            self._semaphore = device.create_semaphore(0)
            self._value = 0
            raise
        self._value = value
        try:
            sem.wait(value)
        except HalError as e:
            self._semaphore = device.create_semaphore(0)
            self._value = 0
            if isinstance(e, UsageError):
                raise
            err = wrap_execution_error(self.name, self._module_name, device.id, e)
            raise err from err.__cause__
        return self._results(results)

    def __call__(self, *args: Any) -> Any:
        with self._lock:
            if self._transfer:
                return self._call_transfer(args)
            wrap = self._wrap
            table = []
            for i, a in enumerate(self._checked_arguments(args)):
                if wrap is not None and wrappable(a, self._alignment):
                    table.append(wrap(a.reshape(-1).view("u1"), _READ_ONLY))
                else:
                    table.append(self._staged(i, a))
            results: list[Any] = []
            take = self._memory.take
            for size, _, _ in self._out_specs:
                try:
                    if wrap is not None:
                        raw = take(size, results)
                        table.append(wrap(raw))
                        results.append(raw)
                    else:
                        table.append(self._allocator.allocate_buffer(
                            size, mapped_type(self._allocator)))
                except (MemoryError, ValueError) as e:
                    raise allocation_failed(f"{self.name} result", size, e) from e
            if self._arena is not None:
                table.append(self._arena)
            self._value += 1
            value = self._value
            sem = self._semaphore
            try:
                self._device.queue_execute((), ((sem, value),), self._cb, (table,))
                sem.wait(value)
            except HalError as e:
                if sem.failure is not None:
                    # A failed timeline semaphore stays failed; the next call needs a new one.
                    self._semaphore = self._device.create_semaphore(0)
                    self._value = 0
                if isinstance(e, UsageError):
                    raise
                err = wrap_execution_error(self.name, self._module_name, self._device.id, e)
                raise err from err.__cause__
            if wrap is None:
                results = [b.map() for b in table[self._n_in:self._n_in + len(self._out_specs)]]
        return self._results(results)

    def _release(self) -> None:
        self._cb = ()
        for buf in (*self._device_outputs, *self._device_inputs):
            if buf is not None:
                buf.release()
        self._device_outputs, self._device_inputs = [], [None] * self._n_in
        if self._arena is not None:
            self._arena.release()
            self._arena = None
