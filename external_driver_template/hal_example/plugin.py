"""Registers the example driver and target with hal.

hal imports this module while listing plugins (``hal drivers list``), so it imports nothing but
hal_core's descriptors and the two names in ``hal_example/__init__.py``: numpy and the driver
itself are behind the factory import paths, which hal resolves only when the driver or target
is used.
"""

from hal_core.descriptors import DriverInfo, TargetInfo
from hal_core.hookspecs import hookimpl
from hal_example import FORMAT, NAME

#: The hal plugin API this plugin was written for (see hal_core/hookspecs.py).
HAL_PLUGIN_API_VERSION = "1.1"


@hookimpl
def hal_register_drivers() -> list[DriverInfo]:
    return [
        DriverInfo(
            name=NAME,
            description="example accelerator (device memory and queue of its own; runs on numpy)",
            factory="hal_example.driver:create_driver",
            probe="hal_example.driver:probe",
        )
    ]


@hookimpl
def hal_register_targets() -> list[TargetInfo]:
    return [
        TargetInfo(
            name=NAME,
            description="kernel IR -> example-program (strided access descriptors, SSA body)",
            factory="hal_example.target:create_target",
            formats=(FORMAT,),
            drivers=(NAME,),
        )
    ]
