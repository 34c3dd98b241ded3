"""Registers the local-sync and local-task drivers. Imports nothing heavy."""

from hal_core.descriptors import DriverInfo
from hal_core.hookspecs import hookimpl

HAL_PLUGIN_API_VERSION = "1.0"


@hookimpl
def hal_register_drivers() -> list[DriverInfo]:
    return [
        DriverInfo(
            name="local-sync",
            description="Host CPU, executes inline on the calling thread",
            factory="hal_local.sync:create_driver",
            probe="hal_core.hal.local.cpu:probe",
        ),
        DriverInfo(
            name="local-task",
            description="Host CPU, a worker pool spreads workgroups over cores",
            factory="hal_local.task:create_driver",
            probe="hal_core.hal.local.cpu:probe",
        ),
    ]
