"""Kept for code written before the local package moved into the core: the host CPU facts
now live in :mod:`hal_core.hal.local.cpu`."""

from hal_core.hal.local.cpu import architecture, cpu_features, probe, usable_cores

__all__ = ["architecture", "cpu_features", "probe", "usable_cores"]
