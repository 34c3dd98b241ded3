"""The hal plugin contract: everything a plugin author needs, in one file.

A hal plugin is a Python module. It is found in one of two ways:

* an entry point in the group ``hal.plugins`` of an installed distribution, e.g. in
  ``pyproject.toml``::

      [project.entry-points."hal.plugins"]
      my-accel = "my_accel.plugin"

* a module name or a path to a ``.py`` file listed in the comma-separated environment variable
  ``HAL_EXTERNAL_DRIVERS`` (the counterpart of IREE's ``IREE_EXTERNAL_HAL_DRIVERS``), for
  drivers that are not installed.

The module must declare the plugin API version it was written for::

    HAL_PLUGIN_API_VERSION = "1.0"

The core accepts a plugin whose major version equals the core's and whose minor version is not
newer than the core's (:data:`HAL_PLUGIN_API_VERSION` below); any other is refused with an error
naming the plugin, its distribution and both versions.

The module then implements any of the hooks below, marked with :data:`hookimpl`::

    from hal_core.hookspecs import hookimpl
    from hal_core.descriptors import DriverInfo

    @hookimpl
    def hal_register_drivers():
        return [DriverInfo(name="my-accel", description="My accelerator",
                           factory="my_accel.driver:create_driver",
                           probe="my_accel.driver:probe")]

Hooks return light descriptors (see :mod:`hal_core.descriptors`). A hook must not import heavy
dependencies (numpy, llvmlite, vulkan, onnx, a vendor SDK): put those behind the ``factory`` and
``probe`` import paths, which the core resolves only when the thing is used or probed. Listing
(``hal drivers list``) calls the hooks and nothing else.

Each hook is called once per plugin, in isolation: if one plugin's hook raises, that plugin is
recorded as failed (with the exception and where it was raised) and every other plugin keeps
working. Two plugins returning the same driver, target, loader format or importer name is an
error naming both distributions; neither wins silently.
"""

from __future__ import annotations

import pluggy

from hal_core.descriptors import DriverInfo, ImporterInfo, LoaderInfo, TargetInfo

PROJECT_NAME = "hal"

#: The plugin API version of this core, "major.minor".
HAL_PLUGIN_API_VERSION = "1.0"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def hal_register_drivers() -> list[DriverInfo]:
    """Return the runtime HAL drivers this plugin provides.

    Called when the registry is first asked about drivers (``hal drivers list``, device
    creation). Return a list of :class:`~hal_core.descriptors.DriverInfo`; an empty list is fine.
    All plugins' answers are collected.
    """


@hookspec
def hal_register_targets() -> list[TargetInfo]:
    """Return the compiler target backends this plugin provides.

    Called when the registry is first asked about targets (``hal targets list``,
    ``hal compile``). Return a list of :class:`~hal_core.descriptors.TargetInfo`.
    All plugins' answers are collected.
    """


@hookspec
def hal_register_executable_loaders() -> list[LoaderInfo]:
    """Return the executable loaders this plugin provides to the local (CPU) drivers.

    A loader makes one executable format (e.g. ``vmvx-bytecode``, ``llvm-object-x86_64``)
    runnable by local-sync and local-task. Called when a local device builds its executable
    cache. Return a list of :class:`~hal_core.descriptors.LoaderInfo`.
    All plugins' answers are collected.
    """


@hookspec
def hal_register_importers() -> list[ImporterInfo]:
    """Return the model importers this plugin provides (text IR, ONNX, ...).

    Called when ``hal compile`` needs to turn an input file into tensor IR. Return a list of
    :class:`~hal_core.descriptors.ImporterInfo`. All plugins' answers are collected.
    """
