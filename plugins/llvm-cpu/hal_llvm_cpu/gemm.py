"""Fast float32 matmul (placeholder until the micro-kernel lands: nothing applies)."""

from __future__ import annotations


def applies(kernel) -> bool:
    return False


def conv_applies(kernel) -> bool:
    return False
