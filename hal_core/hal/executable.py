"""Executables: what a device prepares from one variant's payload, and its entry points.

Each driver decides what a prepared executable is (a Vulkan pipeline set, a loaded object
file). The local (CPU) drivers' executables and their dispatch ABI are in
:mod:`hal_core.hal.local.executable` (:class:`LocalExecutable`, :class:`ExecutableLoader`,
re-exported here).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EntryPoint:
    """One entry point of an executable variant."""

    name: str
    workgroup_size: tuple[int, int, int] = (1, 1, 1)
    binding_count: int = 0
    constant_count: int = 0


# Re-exported: loaders written against the earlier layout import them from here.
from hal_core.hal.local.executable import ExecutableLoader, LocalExecutable  # noqa: E402

__all__ = ["EntryPoint", "ExecutableLoader", "LocalExecutable"]
