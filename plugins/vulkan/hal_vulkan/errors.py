"""UnsupportedKernelError from the core, or a stand-in until the core defines it (contract 3)."""

from __future__ import annotations

from hal_core.errors import CompileError

try:
    from hal_core.errors import UnsupportedKernelError
except ImportError:  # the core before per-kernel executables landed
    class UnsupportedKernelError(CompileError):  # type: ignore[no-redef]
        """A target cannot compile this kernel; other targets' variants may still serve it."""

__all__ = ["UnsupportedKernelError"]
