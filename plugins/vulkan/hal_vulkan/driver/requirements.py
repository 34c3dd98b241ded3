"""Checking a variant's ``vulkan:`` requirements against a physical device.

Vocabulary (the core's requirement contract): ``vulkan:api>=1.1``, ``vulkan:ext:NAME``,
``vulkan:feature:NAME``, ``vulkan:limit:NAME>=N`` (vector limits ``>=AxBxC``, per component),
``vulkan:subgroup-size=N``. A ``cpu:`` (or unnamespaced) requirement can never be met by a
Vulkan device.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_OPS = (">=", "=")


@dataclass(frozen=True)
class Requirement:
    namespace: str
    name: str
    op: str
    value: str


def parse_requirement(text: str) -> Any:
    """The core's parser when it exists, else the same grammar here."""
    try:
        from hal_core.hal.requirements import parse_requirement as core_parse
    except ImportError:
        core_parse = None
    if core_parse is not None:
        return core_parse(text)
    namespace, sep, rest = text.partition(":")
    if not sep:
        namespace, rest = "cpu", text
    for op in _OPS:
        name, found, value = rest.partition(op)
        if found:
            return Requirement(namespace, name, op, value)
    return Requirement(namespace, rest, "", "")


def _version(text: str) -> tuple[int, ...] | None:
    if not re.fullmatch(r"\d+(\.\d+){0,2}", text):
        return None
    return tuple(int(p) for p in text.split("."))


def _ints(text: str) -> list[int] | None:
    parts = text.split("x")
    if not all(p.strip().isdigit() for p in parts):
        return None
    return [int(p) for p in parts]


def unmet(requirement_text: str, device: Any) -> str | None:
    """Why ``device`` (a PhysicalDevice) fails one requirement, or None when it meets it."""
    req = parse_requirement(requirement_text)
    ns = req.namespace
    name = req.name
    if ns != "vulkan":
        return f"needs {requirement_text}, which a Vulkan device cannot provide"
    if name == "api" and req.op == ">=":
        want = _version(req.value)
        if want is None:
            return f"malformed requirement {requirement_text!r}: expected vulkan:api>=MAJOR.MINOR"
        have = (device.api_version >> 22 & 0x7F, device.api_version >> 12 & 0x3FF,
                device.api_version & 0xFFF)
        if have[: len(want)] < want:
            return (f"needs Vulkan {req.value}, but device {device.name!r} offers "
                    f"{device.api_text()}")
        return None
    if name.startswith("ext:") and not req.op:
        ext = name[4:]
        if ext not in device.extensions:
            return f"needs device extension {ext}, which device {device.name!r} lacks"
        return None
    if name.startswith("feature:") and not req.op:
        feature = name[8:]
        if feature not in device.features:
            return f"needs feature {feature}, which this driver does not know (misspelled?)"
        if not device.features[feature]:
            return f"needs feature {feature}, which device {device.name!r} lacks"
        return None
    if name.startswith("limit:") and req.op == ">=":
        limit = name[6:]
        want = _ints(req.value)
        if want is None:
            return f"malformed requirement {requirement_text!r}: expected a number or AxBxC"
        if limit not in device.limits:
            return f"needs limit {limit}, which this driver does not know (misspelled?)"
        have = device.limits[limit]
        have_list = list(have) if isinstance(have, list) else [have]
        if len(have_list) != len(want):
            return (f"requirement {requirement_text!r} gives {len(want)} component(s) but "
                    f"{limit} has {len(have_list)}")
        if any(h < w for h, w in zip(have_list, want)):
            shown = "x".join(str(h) for h in have_list)
            return f"needs {limit} >= {req.value}, but device {device.name!r} has {shown}"
        return None
    if name == "subgroup-size" and req.op == "=":
        if not req.value.isdigit():
            return f"malformed requirement {requirement_text!r}: expected subgroup-size=N"
        want_size = int(req.value)
        if want_size == device.subgroup_size:
            return None
        if (device.features.get("subgroupSizeControl")
                and device.min_subgroup_size <= want_size <= device.max_subgroup_size):
            return None
        return (f"needs subgroup size {want_size}, but device {device.name!r} runs "
                f"{device.subgroup_size}")
    return (f"unknown Vulkan requirement {requirement_text!r}; expected vulkan:api>=V, "
            f"vulkan:ext:NAME, vulkan:feature:NAME, vulkan:limit:NAME>=N or "
            f"vulkan:subgroup-size=N")


def check_requirements(features: Any, device: Any) -> str | None:
    """The first unmet requirement's reason, or None."""
    from hal_core.errors import UsageError

    for text in features or ():
        try:
            reason = unmet(str(text), device)
        except UsageError as e:  # malformed: a reason, not an error
            reason = str(e)
        if reason is not None:
            return reason
    return None


def feature_strings(device: Any) -> frozenset[str]:
    """Requirement strings the device satisfies, for listings (``hal devices dump``): API
    levels, subgroup size, feature booleans. Extensions are listed in the device properties;
    :func:`check_requirements` is what decides."""
    out = {f"vulkan:feature:{k}" for k, v in device.features.items() if v}
    major, minor = device.api_version >> 22 & 0x7F, device.api_version >> 12 & 0x3FF
    out |= {f"vulkan:api>={major}.{m}" for m in range(minor + 1)}
    if device.subgroup_size:
        out.add(f"vulkan:subgroup-size={device.subgroup_size}")
    return frozenset(out)
