"""The HAL conformance test suite (CTS), shipped as a pytest plugin.

``pytest --hal-driver=NAME`` runs every suite in this package against the installed driver
``NAME``; ``--hal-device=URI`` picks one of its devices. Without the option the plugin only
registers its options (no discovery, no numpy, nothing collected).

Suites (one module each): ``test_driver`` (enumeration, creation by URI, queries, close),
``test_allocator``, ``test_buffer_mapping``, ``test_command_buffer`` (lifecycle, fill/update/
copy, reusable command buffers with binding tables), ``test_semaphore`` (timelines, timeouts,
failure propagation, waits from several threads), ``test_queue`` (alloca/execute/dealloca).
``test_dispatch`` (executables compiled from kernel IR by whichever registered target backend
produces a format the device can prepare: one dispatch, several entry points, many workgroups,
chains with barriers, reusable command buffers with other bindings), ``test_dispatch_abi``
(push constants and workgroup ids through the local dispatch ABI, with the CTS's own Python
executable format; see :mod:`hal_core.cts.executables`).

Tests use the fixtures ``hal_driver`` and ``hal_device`` (see :mod:`hal_core.cts.plugin`). A
test marked ``@pytest.mark.hal_feature("name")`` is skipped, with the driver's reason, when the
driver lists ``name`` in its ``cts_unsupported`` mapping. Feature names in use:
``reusable_command_buffers``, ``local_dispatch_abi`` (the driver dispatches
``LocalExecutable`` objects), ``out_of_bounds_detection`` (a dispatch reading past the end of a
binding fails its submission; GPU drivers, whose storage-buffer accesses are not checked,
declare it unsupported).
"""
