"""Executable caches: prepare executables from variant payloads through registered loaders.

:class:`ExecutableCache` is the interface every device offers. :class:`LoaderExecutableCache`
is the local devices' one: it can prepare exactly the formats for which a plugin registered an
executable loader (``hal_register_executable_loaders``) that is usable here (no name conflict,
probe passes); loaders are created on first use.
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


def loader_formats(registry: Any) -> tuple[tuple[str, ...], dict[str, str]]:
    """The formats whose loaders can be used here, and why each other one cannot.

    A loader is left out when its format is claimed by two plugins (a conflict) or when its
    probe gives a reason (or raises): a device must not advertise a format it cannot load,
    so that variant selection falls back to the module's next variant.
    """
    from hal_core.descriptors import resolve

    usable: list[str] = []
    unusable: dict[str, str] = {}
    for entry in registry.loaders():
        fmt = entry.info.format
        if getattr(entry, "error", None):
            unusable[fmt] = entry.error
            continue
        probe = entry.info.probe
        if probe:
            try:
                reason = resolve(probe)()
            except Exception as e:  # noqa: BLE001 - a broken probe makes the loader unusable
                reason = f"its probe {probe!r} raised {type(e).__name__}: {e}"
            if reason:
                log.info("executable loader %r is unavailable: %s", fmt, reason)
                unusable[fmt] = str(reason)
                continue
        if fmt not in usable:
            usable.append(fmt)
    return tuple(usable), unusable


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


class LoaderExecutableCache(ExecutableCache):
    """Prepares executables for a local device from the loaders of a plugin registry."""

    def __init__(self, registry: Any, device_id: str = "") -> None:
        self._registry = registry
        self.device_id = device_id
        self._formats, self.unavailable = loader_formats(registry)
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
            why = self.unavailable.get(format)
            why = f" (its loader is unavailable: {why})" if why else ""
            raise IncompatibleModuleError(
                f"device {self.device_id or '?'} cannot prepare executable format "
                f"{format!r}{why}; it can prepare: {can}; compile for a target that produces "
                f"one of these"
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
