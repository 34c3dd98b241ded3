"""Kept for code written before the local package moved into the core: the local command
buffer now lives in :mod:`hal_core.hal.local.command_buffer`."""

from hal_core.hal.local.command_buffer import LocalCommandBuffer, build_step

__all__ = ["LocalCommandBuffer", "build_step"]
