"""Executable caches: :class:`ExecutableCache` is the interface every device offers.

The local devices' implementation, which prepares payloads through the executable loaders
plugins register, is :class:`hal_core.hal.local.executable_cache.LoaderExecutableCache`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hal_core.errors import UsageError
from hal_core.hal.executable import EntryPoint


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
    """The interface of a device's executable cache: which formats it can prepare, and
    :meth:`prepare` of a variant's payload into something the device's command buffers
    dispatch."""

    device_id: str = ""

    def formats(self) -> tuple[str, ...]:
        """The executable formats this cache can prepare."""
        raise NotImplementedError

    def can_prepare(self, format: str) -> bool:
        return format in self.formats()

    def prepare(self, format: str, payload: bytes | memoryview, entry_points: Sequence[Any]
                ) -> Any:
        """Prepare ``payload`` (of ``format``) declaring ``entry_points``; raise
        IncompatibleModuleError for a format it cannot prepare, ModuleFormatError for a
        malformed payload."""
        raise NotImplementedError


def __getattr__(name: str) -> Any:
    # The loader-backed cache lived here before the local package: keep old imports working.
    if name in ("LoaderExecutableCache", "loader_formats"):
        from hal_core.hal.local import executable_cache

        return getattr(executable_cache, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
