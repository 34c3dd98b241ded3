"""Choosing, for each executable of a module, the variant a device can run.

The first variant (in the module's order: the order of ``--target-backends``, and within one
target the order it returned its variants, e.g. host-tuned before baseline) whose format the
device can prepare and whose requirements ``Device.check_variant`` accepts wins. When none
fits, the error names the device, what the module holds, what the device can prepare, and the
``hal compile`` flag that would produce a module that fits.
"""

from __future__ import annotations

from typing import Any

from hal_core.errors import IncompatibleModuleError
from hal_core.module.model import Module, Variant


def variant_problem(device: Any, variant: Variant) -> str | None:
    """Why ``device`` cannot run ``variant`` (format, then requirements), or None."""
    if not device.can_prepare(variant.format):
        return f"the device cannot prepare format {variant.format!r}"
    check = getattr(device, "check_variant", None)
    if check is None:  # a duck-typed device without the check: its feature set decides
        missing = sorted(set(variant.features) - set(device.query_features()))
        return f"needs {', '.join(missing)}, which the device lacks" if missing else None
    return check(variant)


def select_variants(module: Module, device: Any, registry: Any) -> list[Variant]:
    """One variant per executable of ``module``, in order; raise IncompatibleModuleError.

    The first variant whose format ``device`` can prepare and whose requirements
    ``device.check_variant`` accepts wins.
    """
    chosen = []
    for exe in module.executables:
        reasons = []
        for v in exe.variants:
            problem = variant_problem(device, v)
            if problem is None:
                chosen.append(v)
                break
            reasons.append(problem)
        else:
            raise IncompatibleModuleError(no_fitting_variant_message(
                module, exe, device.id, tuple(device.query_formats()), reasons, registry))
    return chosen


def _variant_text(v: Variant, formats: tuple[str, ...], reason: str | None) -> str:
    text = f"{v.format} (target {v.target_backend}"
    if v.format in formats and reason:
        text += f"; {reason}"
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
                               formats: tuple[str, ...], reasons: list[str | None],
                               registry: Any) -> str:
    held = "; ".join(_variant_text(v, formats, r) for v, r in zip(exe.variants, reasons))
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
