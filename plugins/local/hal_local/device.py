"""Kept for code written before the local package moved into the core: the local device
machinery now lives in :mod:`hal_core.hal.local.device`."""

from hal_core.hal.local.device import (
    InlineLocalDevice,
    LocalDevice,
    LocalDriver,
    Submission,
    run_flat,
)

__all__ = ["InlineLocalDevice", "LocalDevice", "LocalDriver", "Submission", "run_flat"]
