"""The vmvx-bytecode loader and interpreter (the local dispatch ABI of hal_core.hal.executable).

``load`` decodes and checks the payload once and binds each instruction to a numpy microkernel
closure. ``run`` then only (1) finds the rows of the tile, (2) builds the kernel's views of the
bindings (cached per set of binding arrays, so a re-dispatch with the same buffers costs nothing
here), (3) slices them per chunk and (4) calls the closures.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from hal_core.errors import HalError, HalRuntimeError, ModuleFormatError
from hal_core.hal.executable import EntryPoint, ExecutableLoader, LocalExecutable
from hal_vmvx import bytecode as bc
from hal_vmvx.microkernels import bind

log = logging.getLogger(__name__)



class _Kernel:
    """One decoded entry point, ready to run."""

    def __init__(self, code: bc.KernelCode) -> None:
        self.code = code
        self.name = code.name
        self.rows = code.rows
        self.chunk = code.chunk_rows
        self.quiet = code.quiet
        self.serial = code.serial
        handlers = [bind(i, code.values) for i in code.instrs]
        cut = len(handlers) - code.tail_instrs
        self.handlers, self.tail = handlers[:cut], handlers[cut:]
        # (value index, binding, dtype, offset, shape, strides) of each view
        self.views = [(i, v.binding, np.dtype(v.dtype), v.byte_offset, v.shape, v.strides)
                      for i, v in enumerate(code.values)
                      if v.kind == bc.VIEW and 0 not in v.shape]
        self.statics: list[Any] = [None] * len(code.values)
        self.scratch = []  # (value index, dtype, shape, tile axis)
        self.sliced = []   # (value index, index prefix) of values cut to the chunk's rows
        for i, v in enumerate(code.values):
            if v.kind == bc.VIEW and 0 in v.shape:  # touches no byte: need not fit its binding
                self.statics[i] = np.empty(v.shape, v.dtype)
            elif v.kind == bc.SCALAR:
                raw = v.float_value if v.dtype.startswith("float") else v.int_value
                self.statics[i] = np.array(raw).astype(v.dtype)[()]
            elif v.kind == bc.IOTA:
                self.statics[i] = np.arange(v.shape[v.int_value], dtype=np.int64).reshape(v.shape)
            elif v.kind == bc.SCRATCH:
                self.scratch.append((i, np.dtype(v.dtype), list(v.shape), v.tile_axis))
            if v.tile_axis >= 0 and v.kind != bc.SCRATCH:
                self.sliced.append((i, (slice(None),) * v.tile_axis))

    def env_for(self, bindings: Sequence[Any]) -> list[Any]:
        # Built per run, never cached: a cached env's views would keep the caller's inputs and
        # results alive after the call (and local command buffers slice fresh arrays per
        # execution, so such a cache hardly ever hit).
        if len(bindings) < self.code.binding_count:
            raise HalRuntimeError(f"vmvx kernel {self.name!r} needs {self.code.binding_count} "
                                  f"bindings, the dispatch bound {len(bindings)}")
        env = list(self.statics)
        for i, b, dt, off, shape, strides in self.views:
            buf = bindings[b]
            try:
                env[i] = np.ndarray(shape, dt, buffer=buf, offset=off, strides=strides)
            except (TypeError, ValueError) as exc:
                raise HalRuntimeError(
                    f"vmvx kernel {self.name!r}: binding {b} ({len(buf)} bytes) cannot hold a "
                    f"{dt.name} view of shape {shape} at byte offset {off}: {exc}; bind a "
                    "larger buffer range") from None
        return env

    def run(self, count: int, first: int, last: int, bindings: Sequence[Any]) -> None:
        rows = self.rows
        if self.serial:  # the tile holding workgroup 0 does it all
            r0, r1 = 0, (rows if first == 0 else 0)
        else:
            per = -(-rows // count)
            r0, r1 = first * per, min(last * per, rows)
        if r0 >= r1:
            return
        env = self.env_for(bindings)
        if r0 == 0 and r1 == rows and (not self.chunk or self.chunk >= rows):
            # The fast path (small dispatches, local-sync): whole range, nothing to slice.
            if self.scratch:
                env = list(env)
                for i, dt, shape, axis in self.scratch:
                    if axis >= 0:
                        shape = list(shape)
                        shape[axis] = rows
                    env[i] = np.empty(shape, dt)
            for h in self.handlers:
                h(env, 0, rows)
            for h in self.tail:
                h(env, 0, rows)
            return
        chunk = self.chunk or (r1 - r0)
        local = list(env)
        scratch = []
        for i, dt, shape, axis in self.scratch:
            if axis >= 0:
                shape = list(shape)
                shape[axis] = min(chunk, r1 - r0)
            scratch.append((i, np.empty(shape, dt), axis))
        for c0 in range(r0, r1, chunk):
            c1 = min(c0 + chunk, r1)
            for i, prefix in self.sliced:
                local[i] = env[i][prefix + (slice(c0, c1),)]
            for i, arr, axis in scratch:
                local[i] = arr if axis < 0 or arr.shape[axis] == c1 - c0 else \
                    arr[(slice(None),) * axis + (slice(0, c1 - c0),)]
            for h in self.handlers:
                h(local, c0, c1)
        for h in self.tail:
            h(local, r0, r1)


class VmvxExecutable(LocalExecutable):
    format = "vmvx-bytecode"
    # numpy views need only the natural alignment of each element type, so the runtime may
    # bind a caller's array in place instead of copying it to a 64-byte aligned buffer.
    binding_alignment = 1

    def __init__(self, kernels: list[bc.KernelCode], entry_points: Sequence[EntryPoint]) -> None:
        self.entry_points = tuple(entry_points)
        self._kernels = [_Kernel(k) for k in kernels]
        self._lock = threading.Lock()

    def run(self, entry: int, workgroup_count: tuple[int, int, int], first: int, last: int,
            bindings: Sequence[Any], constants: Sequence[int]) -> None:
        if not 0 <= entry < len(self._kernels):
            raise HalRuntimeError(f"vmvx executable has {len(self._kernels)} entry points, "
                                  f"dispatch asked for entry point {entry}")
        k = self._kernels[entry]
        count = workgroup_count[0] * workgroup_count[1] * workgroup_count[2]
        if count < 1 or not 0 <= first <= last <= count:
            raise HalRuntimeError(f"vmvx kernel {k.name!r}: workgroups [{first}, {last}) of "
                                  f"{tuple(workgroup_count)} is not a valid tile")
        try:
            if k.quiet:
                with np.errstate(all="ignore"):
                    k.run(count, first, last, bindings)
            else:
                k.run(count, first, last, bindings)
        except HalError:
            raise
        except Exception as exc:
            raise HalRuntimeError(f"vmvx kernel {k.name!r} failed: {type(exc).__name__}: "
                                  f"{exc}") from exc


class VmvxLoader(ExecutableLoader):
    format = "vmvx-bytecode"

    def load(self, payload: bytes | memoryview,
             entry_points: Sequence[EntryPoint]) -> LocalExecutable:
        kernels = bc.decode(payload)
        if entry_points and len(entry_points) != len(kernels):
            raise ModuleFormatError(f"vmvx-bytecode payload has {len(kernels)} kernels but the "
                                    f"variant declares {len(entry_points)} entry points")
        for ep, k in zip(entry_points, kernels):
            if ep.binding_count and ep.binding_count < k.binding_count:
                raise ModuleFormatError(f"entry point {ep.name!r} declares {ep.binding_count} "
                                        f"bindings, its kernel uses {k.binding_count}")
        if not entry_points:
            entry_points = [EntryPoint(k.name, binding_count=k.binding_count) for k in kernels]
        try:
            exe = VmvxExecutable(kernels, entry_points)
        except HalError:
            raise
        except Exception as exc:  # noqa: BLE001 - a well-formed FlatBuffer can still describe nonsense
            raise ModuleFormatError(f"malformed vmvx-bytecode payload: {type(exc).__name__}: "
                                    f"{exc}") from None
        log.debug("loaded vmvx executable with %d kernels", len(kernels))
        return exe


def create_loader() -> VmvxLoader:
    return VmvxLoader()
