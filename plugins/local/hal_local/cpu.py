"""What the host CPU is: architecture, feature flags, usable cores (no heavy imports)."""

from __future__ import annotations

import functools
import os
import platform


def probe() -> str | None:
    """The local drivers run wherever Python threads and numpy do (numpy is found, not imported)."""
    import importlib.util

    if importlib.util.find_spec("numpy") is None:
        return "numpy is not installed; pip install numpy"
    return None


@functools.cache
def architecture() -> str:
    machine = platform.machine().lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine or "unknown")


@functools.cache
def cpu_features() -> frozenset[str]:
    """Feature flags from /proc/cpuinfo (x86 ``flags``, Arm ``Features``), in LLVM's spelling
    beside the kernel's (``sse4_1`` and ``sse4.1``); empty elsewhere."""
    from hal_core.hal.requirements import normalize_cpu_flags

    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, sep, value = line.partition(":")
                if sep and key.strip() in ("flags", "Features"):
                    return normalize_cpu_flags(value.split())
    except OSError:
        pass
    return frozenset()


def usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)
