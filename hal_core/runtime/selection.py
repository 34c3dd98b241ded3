"""Choosing, for each executable of a module, the variant a device can run.

The first variant (in the module's order, which is the order of ``--target-backends``) whose
format the device can prepare and whose required features the device has wins. When none
fits, the error names the device, what the module holds, what the device can prepare, and the
``hal compile`` flag that would produce a module that fits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from hal_core.errors import IncompatibleModuleError
from hal_core.module.model import Module, Variant


def select_variants(module: Module, device_name: str, can_prepare: Callable[[str], bool],
                    formats: Iterable[str], features: frozenset[str],
                    registry: Any) -> list[Variant]:
    """One variant per executable of ``module``, in order; raise IncompatibleModuleError."""
    chosen = []
    for exe in module.executables:
        for v in exe.variants:
            if can_prepare(v.format) and features.issuperset(v.features):
                chosen.append(v)
                break
        else:
            raise IncompatibleModuleError(
                no_fitting_variant_message(module, exe, device_name, tuple(formats), features,
                                           registry))
    return chosen


def _variant_text(v: Variant, formats: tuple[str, ...], features: frozenset[str]) -> str:
    text = f"{v.format} (target {v.target_backend}"
    missing = sorted(set(v.features) - features)
    if v.format in formats and missing:
        text += f"; needs features the device lacks: {', '.join(missing)}"
    elif v.features:
        text += f"; needs {', '.join(v.features)}"
    return text + ")"


def fitting_targets(formats: tuple[str, ...], registry: Any) -> list[str]:
    """Registered target backends that produce a format in ``formats``."""
    try:
        targets = registry.targets()
    except Exception:  # noqa: BLE001 - the hint is best effort; the error is raised anyway
        return []
    wanted = set(formats)
    return [t.name for t in targets
            if getattr(t, "error", None) is None and wanted.intersection(t.info.formats)]


def no_fitting_variant_message(module: Module, exe: Any, device_name: str,
                               formats: tuple[str, ...], features: frozenset[str],
                               registry: Any) -> str:
    held = "; ".join(_variant_text(v, formats, features) for v in exe.variants)
    can = ", ".join(formats) or "no executable formats (no loader plugin installed?)"
    message = (f"module {module.name!r} has no variant that device {device_name} can run: "
               f"executable {exe.name!r} holds {held}; the device can prepare {can}")
    targets = fitting_targets(formats, registry)
    if targets:
        message += (f"; recompile with `hal compile --target-backends={','.join(targets)}` "
                    f"to make a module that runs on {device_name}")
    else:
        message += ("; no installed target backend produces one of those formats: install a "
                    "target plugin for this device, or run on a device that can prepare "
                    f"{', '.join(sorted({v.format for v in exe.variants}))}")
    return message
