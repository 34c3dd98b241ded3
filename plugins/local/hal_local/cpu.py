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


#: /proc/cpuinfo spellings that differ from LLVM's feature names.
_LLVM_NAMES = {
    "pni": "sse3", "sse4_1": "sse4.1", "sse4_2": "sse4.2", "abm": "lzcnt", "bmi1": "bmi",
    "pclmulqdq": "pclmul", "sha_ni": "sha", "avx512_vnni": "avx512vnni",
    "avx512_bf16": "avx512bf16", "avx512_vbmi2": "avx512vbmi2", "avx512_bitalg": "avx512bitalg",
    "avx512_vpopcntdq": "avx512vpopcntdq", "avx512_fp16": "avx512fp16", "avx_vnni": "avxvnni",
    "asimd": "neon", "fp": "fp-armv8", "asimddp": "dotprod", "asimdhp": "fullfp16",
}


@functools.cache
def cpu_features() -> frozenset[str]:
    """Feature flags from /proc/cpuinfo (x86 ``flags``, Arm ``Features``); empty elsewhere.

    Each flag is present as /proc/cpuinfo spells it and as ``cpu:<LLVM name>`` (contract 1 of
    the variant requirements).
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, sep, value = line.partition(":")
                if sep and key.strip() in ("flags", "Features"):
                    flags = value.split()
                    return frozenset(flags) | {f"cpu:{_LLVM_NAMES.get(x, x)}" for x in flags}
    except OSError:
        pass
    return frozenset()


def usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)
