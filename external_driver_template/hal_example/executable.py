"""Executables of the example device: prepared ``example-program`` payloads.

The executable cache is the device's compiler front door: it answers which formats the device
can prepare and turns a variant's payload into an executable once, at module load, so that
dispatching it later costs nothing but the kernel itself.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from hal_core.errors import IncompatibleModuleError, ModuleFormatError
from hal_core.hal.executable import EntryPoint
from hal_core.hal.executable_cache import ExecutableCache, as_entry_point
from hal_example import FORMAT, NAME
from hal_example.interpreter import run_kernel
from hal_example.program import ProgramKernel, decode

log = logging.getLogger(__name__)


class ExampleExecutable:
    """Kernels of one payload; entry point i runs kernel i."""

    format = FORMAT

    def __init__(self, kernels: list[ProgramKernel], entry_points: tuple[EntryPoint, ...]) -> None:
        self.kernels = kernels
        self.entry_points = entry_points

    def __repr__(self) -> str:
        return f"<ExampleExecutable {[e.name for e in self.entry_points]}>"

    def run(self, entry: int, workgroup_count: tuple[int, int, int],
            bindings: Sequence[Any]) -> None:
        """Run every workgroup of a dispatch of ``entry`` on device-memory ``bindings``."""
        x, y, z = workgroup_count
        run_kernel(self.kernels[entry], 0, x * y * z, bindings)


class ExampleExecutableCache(ExecutableCache):
    """Prepares ``example-program`` payloads (and nothing else) for one device."""

    def __init__(self, device_id: str) -> None:
        # No registry: the device prepares its own format, not the local drivers' loaders.
        self.device_id = device_id

    def formats(self) -> tuple[str, ...]:
        return (FORMAT,)

    def can_prepare(self, format: str) -> bool:
        return format == FORMAT

    def prepare(self, format: str, payload: bytes | memoryview,
                entry_points: Sequence[Any]) -> ExampleExecutable:
        if format != FORMAT:
            raise IncompatibleModuleError(
                f"device {self.device_id} cannot prepare executable format {format!r}; it can "
                f"prepare {FORMAT}: compile with --target-backends={NAME}")
        eps = tuple(as_entry_point(e) for e in entry_points)
        kernels = decode(payload)
        if len(kernels) != len(eps) or any(k.name != e.name for k, e in zip(kernels, eps)):
            raise ModuleFormatError(
                f"{FORMAT} payload holds kernels {[k.name for k in kernels]} but the variant "
                f"declares entry points {[e.name for e in eps]}; the module is corrupt or was "
                f"written by another target")
        for k, e in zip(kernels, eps):
            needed = 1 + max((a.binding for st in k.stages for a in st.operands), default=-1)
            if needed > e.binding_count:
                raise ModuleFormatError(
                    f"{FORMAT} kernel {k.name!r} reads binding {needed - 1} but its entry "
                    f"point declares {e.binding_count} bindings")
            if e.constant_count:
                raise ModuleFormatError(
                    f"{FORMAT} kernel {k.name!r}: entry point declares {e.constant_count} push "
                    f"constants; example programs take none")
        log.debug("%s: prepared %d kernels", self.device_id, len(kernels))
        return ExampleExecutable(kernels, eps)
