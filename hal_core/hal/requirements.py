"""The vocabulary of variant requirements (``Variant.features``) and the CPU checks.

A variant lists what it needs of a device as strings, each in a namespace:

* ``cpu:<feature>`` - a CPU feature in LLVM's spelling: ``cpu:avx512f``, ``cpu:fma``,
  ``cpu:sse4.1``, ``cpu:neon``. A string without a namespace (``avx2``) is a legacy CPU feature
  and means ``cpu:avx2``.
* ``vulkan:api>=1.1`` - the Vulkan API version, at least;
  ``vulkan:ext:VK_KHR_spirv_1_4`` - a device extension;
  ``vulkan:feature:shaderInt64`` - a VkPhysicalDeviceFeatures (or ...Features2 chain) boolean;
  ``vulkan:limit:maxComputeSharedMemorySize>=16384`` - a device limit, at least; a vector limit
  as ``vulkan:limit:maxComputeWorkGroupSize>=128x8x4``, compared per component;
  ``vulkan:subgroup-size=32`` - exactly.

:func:`parse_requirement` splits one string into a :class:`Requirement`: the namespace (the
text before the first ``:``), the name (the rest up to an operator; it may itself contain
``:``, as in ``ext:VK_KHR_spirv_1_4``), the operator (``""``, ``">="`` or ``"="``) and the
value (a string; empty without an operator).

A device answers ``Device.check_variant(variant)`` with None or a one-line reason; it refuses
namespaces it does not know (a CPU device cannot check ``vulkan:`` requirements), so a variant
never runs on a device that has not understood what it needs.

The local (CPU) devices compare ``cpu:`` requirements with the host's features, read from
``/proc/cpuinfo`` and renamed to LLVM's spelling by :func:`normalize_cpu_flags`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

from hal_core.errors import UsageError

#: Namespaces of the requirement vocabulary.
NAMESPACES = ("cpu", "vulkan")

_SPLIT = re.compile(r"^(?P<name>[^<>=!]+?)\s*(?:(?P<op>>=|=)\s*(?P<value>[^<>=]*))?$")


@dataclass(frozen=True)
class Requirement:
    """One parsed requirement: ``namespace:name[op value]``."""

    namespace: str  # "cpu", "vulkan", or a third party's namespace
    name: str       # "avx512f", "api", "ext:VK_KHR_spirv_1_4", "limit:maxComputeSharedMemorySize"
    op: str = ""    # "", ">=" or "="
    value: str = ""

    def __str__(self) -> str:
        return f"{self.namespace}:{self.name}{self.op}{self.value}"


@functools.lru_cache(maxsize=1024)
def parse_requirement(text: str) -> Requirement:
    """Parse one requirement string (see the module docstring); raise UsageError if malformed."""
    if not isinstance(text, str) or not text.strip():
        raise UsageError(f"a variant requirement must be a non-empty string such as "
                         f"'cpu:avx2' or 'vulkan:api>=1.1', got {text!r}")
    namespace, sep, rest = text.strip().partition(":")
    if not sep:
        namespace, rest = "cpu", namespace  # legacy: a bare CPU feature
    match = _SPLIT.match(rest)
    if not namespace or match is None or not match["name"].strip():
        raise UsageError(f"malformed variant requirement {text!r}: expected "
                         f"'namespace:name', 'namespace:name>=value' or "
                         f"'namespace:name=value' (e.g. 'cpu:avx2', 'vulkan:api>=1.1')")
    op, value = match["op"] or "", (match["value"] or "").strip()
    if bool(op) != bool(value):
        raise UsageError(f"malformed variant requirement {text!r}: an operator needs a "
                         f"value and a value needs '>=' or '='")
    return Requirement(namespace.strip(), match["name"].strip(), op, value)


# -- CPU features -----------------------------------------------------------------------------

#: /proc/cpuinfo flag -> LLVM feature name, where they differ (x86 and Arm). Flags not listed
#: keep their name: most x86 flags (avx2, fma, avx512f, bmi2, f16c, popcnt, ...) are spelled
#: the same by both.
_CPUINFO_TO_LLVM = {
    # x86
    "pni": "sse3",
    "sse4_1": "sse4.1",
    "sse4_2": "sse4.2",
    "lahf_lm": "sahf",
    "abm": "lzcnt",
    "bmi1": "bmi",
    "avx512_bf16": "avx512bf16",
    "avx512_vnni": "avx512vnni",
    "avx512_vbmi2": "avx512vbmi2",
    "avx512_bitalg": "avx512bitalg",
    "avx512_vpopcntdq": "avx512vpopcntdq",
    "avx512_fp16": "avx512fp16",
    "avx_vnni": "avxvnni",
    "pclmulqdq": "pclmul",
    "rdrand": "rdrnd",
    "sha_ni": "sha",
    # Arm (aarch64 "Features" line)
    "asimd": "neon",
    "fp": "fp-armv8",
    "asimdhp": "fullfp16",
    "asimddp": "dotprod",
    "asimdrdm": "rdm",
    "atomics": "lse",
    "i8mm": "i8mm",
    "bf16": "bf16",
    "sve": "sve",
    "sve2": "sve2",
}


def normalize_cpu_flags(flags: Iterable[str]) -> frozenset[str]:
    """/proc/cpuinfo flags in LLVM's spelling (``sse4_1`` -> ``sse4.1``, ``pni`` -> ``sse3``)."""
    return frozenset(_CPUINFO_TO_LLVM.get(flag, flag) for flag in flags)


def cpu_feature_name(name: str) -> str:
    """A CPU requirement's name in LLVM's spelling (legacy requirements may use the kernel's)."""
    return _CPUINFO_TO_LLVM.get(name, name)


def check_cpu_requirements(requirements: Iterable[Requirement], features: frozenset[str],
                           what: str) -> str | None:
    """None when every ``cpu:`` requirement is in ``features``, else a reason naming them.

    ``what`` names the device ("this CPU", "device local-task://"). Requirements in other
    namespaces are refused: a CPU device cannot check them.
    """
    missing, foreign = [], []
    for req in requirements:
        if req.namespace != "cpu":
            foreign.append(str(req))
        elif req.op or cpu_feature_name(req.name) not in features:
            missing.append(str(req))
    if foreign:
        return (f"needs {', '.join(foreign)}, which {what} cannot provide (it checks only "
                f"cpu: requirements)")
    if missing:
        return f"needs {', '.join(missing)}, which {what} lacks"
    return None
