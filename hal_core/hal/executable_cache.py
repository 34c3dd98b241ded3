"""Executable caches: prepare executables from variant payloads through registered loaders.

A local device can prepare exactly the formats for which a plugin registered an executable
loader (``hal_register_executable_loaders``); loaders are created on first use.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from hal_core.errors import HalError, IncompatibleModuleError, ModuleFormatError, UsageError
from hal_core.hal.executable import EntryPoint, ExecutableLoader, LocalExecutable

log = logging.getLogger(__name__)


def as_entry_point(ep: Any) -> EntryPoint:
    """Accept an EntryPoint or anything shaped like one (e.g. the module's VariantEntryPoint)."""
    if isinstance(ep, EntryPoint):
        return ep
    try:
        return EntryPoint(
            name=ep.name,
            workgroup_size=tuple(ep.workgroup_size),
            binding_count=ep.binding_count,
            constant_count=ep.constant_count,
        )
    except AttributeError as e:
        raise UsageError(
            f"expected an EntryPoint (name, workgroup_size, binding_count, "
            f"constant_count), got {ep!r}"
        ) from e


class ExecutableCache:
    """Prepares executables for one device from the loaders of a plugin registry."""

    def __init__(self, registry: Any, device_id: str = "") -> None:
        self._registry = registry
        self.device_id = device_id
        self._formats = tuple(r.info.format for r in registry.loaders())
        self._loaders: dict[str, ExecutableLoader] = {}
        self._lock = threading.Lock()

    def formats(self) -> tuple[str, ...]:
        """The executable formats this cache can prepare."""
        return self._formats

    def can_prepare(self, format: str) -> bool:
        return format in self._formats

    def _loader(self, format: str) -> ExecutableLoader:
        loader = self._loaders.get(format)
        if loader is None:
            with self._lock:
                loader = self._loaders.get(format)
                if loader is None:
                    loader = self._registry.create_loader(format)
                    self._loaders[format] = loader
        return loader

    def prepare(
        self, format: str, payload: bytes | memoryview, entry_points: Sequence[Any]
    ) -> LocalExecutable:
        """Prepare ``payload`` (of ``format``) declaring ``entry_points``."""
        if format not in self._formats:
            can = ", ".join(self._formats) or "none (no executable loader plugin is installed)"
            raise IncompatibleModuleError(
                f"device {self.device_id or '?'} cannot prepare executable format {format!r}; "
                f"it can prepare: {can}; compile for a target that produces one of these"
            )
        eps = tuple(as_entry_point(ep) for ep in entry_points)
        loader = self._loader(format)
        try:
            executable = loader.load(payload, eps)
        except HalError:
            raise
        except Exception as e:
            raise ModuleFormatError(
                f"the {format!r} loader failed to prepare a payload of {len(payload)} bytes: "
                f"{type(e).__name__}: {e}"
            ) from e
        log.debug("prepared %s executable with %d entry points", format, len(eps))
        return executable
