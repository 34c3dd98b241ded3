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
``probe`` import paths (``"package.module:attribute"``), which the core resolves only when the
thing is used or probed. Listing (``hal drivers list``) calls the hooks and nothing else.

When the hooks are really called: once per process, the first time anything asks the plugin
registry (:func:`hal_core.registry.get_registry`) about plugins - a listing, ``hal compile``,
``load_module``, device creation, the CTS. At that moment every hook of every plugin is called,
one plugin at a time; the answers are kept for the life of the registry
(:func:`hal_core.registry.reset_registry` starts over). If one plugin's hook raises, that plugin
is recorded as failed (with the exception and where it was raised) and every other plugin keeps
working. Two plugins returning the same driver, target, loader format or importer name is an
error naming both distributions; neither wins silently.

Probes: a descriptor's optional ``probe`` resolves to ``() -> str | None``: None when the thing
can be used on this machine, else a one-line reason. Driver probes run in a subprocess for
``hal drivers list --probe`` and ``hal devices ...`` (a crash there is reported, not fatal) and
in-process before a driver's factory is called. Target and importer probes run before their
factory (an unavailable one is a CompileError giving the reason). Loader probes run when a local
device builds its executable cache: an unavailable loader's format is not advertised, so
variant selection falls back to a module's next variant.

The contract, per hook
======================

``hal_register_drivers() -> list[DriverInfo]``
    :class:`~hal_core.descriptors.DriverInfo` fields: ``name`` (the URI scheme,
    ``my-accel://``), ``description``, ``factory``, ``probe``. The factory is
    ``(registry) -> hal_core.hal.driver.Driver``. A Driver has ``name``,
    ``query_available_devices() -> list[DeviceInfo]``, ``create_device(uri | None) -> Device``
    and ``create_default_device()``; its class attribute ``cts_unsupported`` maps CTS feature
    names to the reason the driver lacks them (``pytest --hal-driver=NAME`` then skips those
    tests with that reason). Feature names in use: ``"mapping"`` (host-visible memory that
    ``Buffer.map`` can map), ``"reusable_command_buffers"``, ``"local_dispatch_abi"``.

    A :class:`~hal_core.hal.device.Device` (the interface, ``hal_core/hal/device.py``) has an
    ``allocator`` (:class:`~hal_core.hal.allocator.Allocator`: ``allocate_buffer(size,
    memory_type=None, usage=None)``, ``import_host``, ``query_compatibility``,
    ``memory_heaps``, ``can_wrap_host`` / ``wrap_host``, ``default_memory_type``,
    ``default_usage``), an ``executable_cache`` (:class:`~hal_core.hal.executable_cache.
    ExecutableCache`: ``formats()``, ``can_prepare(format)``, ``prepare(format, payload,
    entry_points)``), queries (``properties()``, ``query_formats()``, ``query_features()``,
    ``check_variant(variant) -> str | None``), ``create_command_buffer(mode,
    binding_capacity)``, ``create_semaphore(initial)``, and queue operations that wait on and
    signal fences: ``queue_alloca``, ``queue_dealloca``, ``queue_execute(wait, signal,
    command_buffers, binding_tables)``, ``queue_barrier``, ``queue_write(wait, signal, data,
    target, target_offset=0)`` and ``queue_read(wait, signal, source, source_offset, target)``
    for host data (the only way into memory without ``MemoryType.HOST_VISIBLE``, which
    ``Buffer.map`` refuses), plus ``wait_idle`` and ``close``. The runtime stages arguments,
    results and constants through ``queue_write`` / ``queue_read`` when the allocator has no
    host-visible memory for kernels. A driver whose device is host memory plus executable
    loaders subclasses :class:`hal_core.hal.local.device.LocalDevice` (the local HAL package,
    ``hal_core/hal/local/``, as IREE's ``hal/local/``).

``hal_register_targets() -> list[TargetInfo]``
    :class:`~hal_core.descriptors.TargetInfo` fields: ``name`` (``--target-backends=NAME``),
    ``description``, ``factory``, ``formats`` (the executable formats it produces), ``drivers``
    (informational), ``probe``. The factory is ``() -> hal_core.compiler.target.TargetBackend``
    whose ``compile(executable, options) -> Variant | list[Variant]`` receives a
    :class:`~hal_core.compiler.kernel_ir.KernelExecutable` (one kernel per executable) and
    :class:`~hal_core.compiler.target.TargetOptions` (``--NAME-key=value`` flags) and returns
    one variant or several in order of preference (a host-tuned build first, a baseline last).
    It raises :class:`~hal_core.errors.UnsupportedKernelError` to decline a kernel: the module
    keeps the other targets' variants for it and fails only when every target declined.

``hal_register_executable_loaders() -> list[LoaderInfo]``
    :class:`~hal_core.descriptors.LoaderInfo` fields: ``format`` (the exact variant format),
    ``description``, ``factory``, ``probe``. The factory is ``() ->
    hal_core.hal.local.executable.ExecutableLoader`` whose ``load(payload, entry_points)``
    returns a :class:`~hal_core.hal.local.executable.LocalExecutable`: the local dispatch ABI
    (``run(entry, workgroup_count, first, last, bindings, constants)``; ``binding_kind``
    ``"array"`` for numpy views or ``"address"`` for a ctypes array of base addresses resolved
    once per submission; ``binding_alignment``). The bindings of one dispatch never overlap.
    Loaders make a format runnable by local-sync, local-task and any LocalDevice.

``hal_register_importers() -> list[ImporterInfo]``
    :class:`~hal_core.descriptors.ImporterInfo` fields: ``name`` (``hal compile
    --importer=NAME``), ``description``, ``factory``, ``extensions`` (file suffixes it claims),
    ``probe``, ``tools`` (optional: examples, random weights and a reference runtime for
    ``hal try``). The factory turns a path or bytes (the source) into a tensor IR
    :class:`hal_core.ir.Module`, which the compiler then verifies.

Variant requirements
====================

``Variant.features`` are requirements in namespaces, parsed by
:func:`hal_core.hal.requirements.parse_requirement` into ``Requirement(namespace, name, op,
value)`` and checked by ``Device.check_variant``: ``cpu:<feature>`` in LLVM's spelling
(``cpu:avx512f``, ``cpu:sse4.1``, ``cpu:neon``; a bare name is a legacy ``cpu:`` one);
``vulkan:api>=1.1``; ``vulkan:ext:VK_KHR_spirv_1_4``; ``vulkan:feature:shaderInt64``;
``vulkan:limit:maxComputeSharedMemorySize>=16384`` (vector limits ``>=128x8x4`` per
component); ``vulkan:subgroup-size=32``. A device refuses namespaces it cannot check. The
runtime picks, per executable, the first variant whose format the device can prepare and whose
``check_variant`` is None; otherwise loading fails naming the device, the formats and reasons.

References: IREE's HAL (https://iree.dev/developers/design-docs/), its driver registration
(``IREE_EXTERNAL_HAL_DRIVERS``), pluggy (https://pluggy.readthedocs.io/).
"""

from __future__ import annotations

import pluggy

from hal_core.descriptors import DriverInfo, ImporterInfo, LoaderInfo, TargetInfo

PROJECT_NAME = "hal"

#: The plugin API version of this core, "major.minor". 1.1 added: namespaced variant
#: requirements and ``Device.check_variant``, several variants per ``TargetBackend.compile``,
#: ``UnsupportedKernelError``, one executable per kernel, ``Device.queue_read`` /
#: ``queue_write``, the address-mode local dispatch ABI, honoured target/importer/loader probes.
#: A plugin relying on those declares "1.1" (an older core then refuses it clearly). 1.2 added
#: ``ImporterInfo.tools`` and the optional ``progress`` of ``TargetBackend.precompile``.
HAL_PLUGIN_API_VERSION = "1.2"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def hal_register_drivers() -> list[DriverInfo]:
    """Return the runtime HAL drivers this plugin provides (see "The contract, per hook").

    Called once, with every other hook, when the registry first discovers plugins. Return a
    list of :class:`~hal_core.descriptors.DriverInfo`; an empty list is fine. Factory:
    ``(registry) -> Driver``; a Driver's ``create_device`` returns a
    :class:`hal_core.hal.device.Device`.
    """


@hookspec
def hal_register_targets() -> list[TargetInfo]:
    """Return the compiler target backends this plugin provides.

    Called once, with every other hook, when the registry first discovers plugins. Return a
    list of :class:`~hal_core.descriptors.TargetInfo`. Factory: ``() -> TargetBackend``;
    ``compile`` returns a Variant or a list of them, or raises UnsupportedKernelError.
    """


@hookspec
def hal_register_executable_loaders() -> list[LoaderInfo]:
    """Return the executable loaders this plugin provides to the local (CPU) drivers.

    A loader makes one executable format (e.g. ``vmvx-bytecode``, ``llvm-object-x86_64``)
    runnable by local-sync, local-task and any other LocalDevice. Called once, with every
    other hook, when the registry first discovers plugins; the loader itself is created on
    first use by a device's executable cache. Return a list of
    :class:`~hal_core.descriptors.LoaderInfo`. Factory: ``() -> ExecutableLoader``.
    """


@hookspec
def hal_register_importers() -> list[ImporterInfo]:
    """Return the model importers this plugin provides (text IR, ONNX, ...).

    Called once, with every other hook, when the registry first discovers plugins; the
    factory is used when ``hal compile`` / ``hal_core.compile`` turns an input into tensor IR.
    Return a list of :class:`~hal_core.descriptors.ImporterInfo`.
    """
