"""Discovery, isolation, provenance and lookups of hal_core.registry, with fake plugins."""

from __future__ import annotations

import pytest

from hal_core.errors import DeviceUnavailableError, PluginError, UsageError
from hal_core.registry import Registry, get_registry, reset_registry

pytestmark = pytest.mark.usefixtures("clean_hal_env")


def external(*paths, **kwargs) -> Registry:
    """Only the given external plugins (no entry points, no core builtins)."""
    return Registry(autoload=False, external=[str(p) for p in paths], builtins=(), **kwargs)


def by_name(records):
    return {r.name: r for r in records}


def test_external_py_file_adds_driver_with_provenance(make_plugin):
    path = make_plugin("accel", drivers=("accel",))
    registry = external(path)
    (entry,) = registry.drivers()
    assert entry.info.name == "accel"
    assert entry.plugin.source == "external"
    assert entry.plugin.distribution == f"external: {path}"
    assert entry.plugin.status == "loaded"
    assert entry.plugin.api_version == "1.0"
    device = registry.create_device("accel://?workers=4")
    assert device.id == "accel://?workers=4"
    assert registry.create_device("accel").id == "accel://0"


def test_external_module_name_is_imported(make_plugin, site):
    path = make_plugin("modplug", directory=site, drivers=("modular",))
    registry = external(path.stem)
    (record,) = registry.plugins()
    assert (record.name, record.module, record.status) == (path.stem, path.stem, "loaded")
    assert registry.driver("modular").plugin is record


def test_entry_point_distribution_provenance(make_plugin, site, install_fake_dist):
    path = make_plugin("eplug", directory=site, drivers=("ep-driver",), targets=("ep-target",))
    install_fake_dist(site, "hal-fake-accel", "2.3.1", {"fake-accel": path.stem})
    registry = Registry(external=[])
    record = by_name(registry.plugins())["fake-accel"]
    assert (record.distribution, record.version, record.source) == (
        "hal-fake-accel", "2.3.1", "entry-point")
    assert record.provenance == "hal-fake-accel==2.3.1"
    assert registry.driver("ep-driver").plugin == record
    assert registry.target("ep-target").info.formats == ("fake-format",)


def test_import_failure_is_recorded_and_others_keep_working(make_plugin):
    good = make_plugin("good", drivers=("good",))
    bad = make_plugin("bad", drivers=("bad",), body="raise RuntimeError('no accelerator SDK')\n")
    registry = external(bad, good)
    records = by_name(registry.plugins())
    failed = records[str(bad)]
    assert failed.status == "failed"
    assert "RuntimeError: no accelerator SDK" in failed.error
    assert f"{bad}:" in failed.error  # where: file:line
    assert [e.name for e in registry.drivers()] == ["good"]
    assert any(str(bad) in p for p in registry.problems())


def test_syntax_error_names_file_and_line(make_plugin):
    bad = make_plugin("syntax", body="def broken(:\n")
    (record,) = external(bad).plugins()
    assert record.status == "failed" and "SyntaxError" in record.error and str(bad) in record.error


def test_raising_hook_marks_only_that_plugin_failed(make_plugin):
    body = """
    @hookimpl
    def hal_register_executable_loaders():
        raise ValueError("loader table corrupt")
    """
    bad = make_plugin("hookfail", drivers=("hookfail",), body=body)
    good = make_plugin("fine", drivers=("fine",))
    registry = external(bad, good)
    records = by_name(registry.plugins())
    assert records[str(bad)].status == "failed"
    assert "hal_register_executable_loaders" in records[str(bad)].error
    assert "ValueError: loader table corrupt" in records[str(bad)].error
    assert records[str(good)].status == "loaded"
    # A failed plugin contributes nothing, not even what its other hooks returned.
    assert [e.name for e in registry.drivers()] == ["fine"]


def test_hook_returning_wrong_type_is_a_failure(make_plugin):
    body = """
    @hookimpl
    def hal_register_importers():
        return ["not a descriptor"]
    """
    (record,) = external(make_plugin("wrongtype", body=body)).plugins()
    assert record.status == "failed" and "ImporterInfo" in record.error


@pytest.mark.parametrize("api", ["2.0", "1.7", "0.9"])
def test_incompatible_api_version_is_refused_naming_both_versions(
        make_plugin, site, api, install_fake_dist):
    path = make_plugin("newer", directory=site, api=api)
    install_fake_dist(site, "hal-future", "9.0", {"future": path.stem})
    registry = Registry(external=[])
    record = by_name(registry.plugins())["future"]
    assert record.status == "incompatible"
    assert record.api_version == api
    message = registry.problems()[0]
    from hal_core.hookspecs import HAL_PLUGIN_API_VERSION

    for part in ("plugin 'future'", "hal-future==9.0", f"API {api}",
                 f"API {HAL_PLUGIN_API_VERSION}"):
        assert part in message
    assert "fake" not in [e.name for e in registry.drivers()]


def test_missing_api_declaration_is_refused(make_plugin, tmp_path):
    path = make_plugin("undeclared")
    path.write_text(path.read_text().replace("HAL_PLUGIN_API_VERSION = '1.0'", ""))
    (record,) = external(path).plugins()
    assert record.status == "incompatible" and "HAL_PLUGIN_API_VERSION" in record.error


def test_duplicate_driver_names_name_both_distributions(make_plugin, site, install_fake_dist):
    one = make_plugin("dupa", directory=site, drivers=("same", "only-a"))
    two = make_plugin("dupb", directory=site, drivers=("same",))
    install_fake_dist(site, "hal-vendor-a", "1.0", {"vendor-a": one.stem})
    install_fake_dist(site, "hal-vendor-b", "2.0", {"vendor-b": two.stem})
    registry = Registry(external=[])
    same = [e for e in registry.drivers() if e.name == "same"]
    assert len(same) == 2 and all(e.error for e in same)
    for part in ("hal-vendor-a==1.0", "hal-vendor-b==2.0", "'same'"):
        assert part in same[0].error
    with pytest.raises(PluginError, match="hal-vendor-a.*hal-vendor-b"):
        registry.driver("same")
    assert registry.driver("only-a").error is None
    with pytest.raises(PluginError):
        registry.create_device("same")


def test_strict_mode_makes_failure_fatal(make_plugin):
    bad = make_plugin("strict", body="import no_such_module_for_hal\n")
    with pytest.raises(PluginError, match="no_such_module_for_hal"):
        external(bad, strict=True).drivers()


def test_strict_mode_from_environment(make_plugin, monkeypatch):
    monkeypatch.setenv("HAL_STRICT_PLUGINS", "1")
    monkeypatch.setenv("HAL_EXTERNAL_DRIVERS", str(make_plugin("envstrict", body="1/0\n")))
    with pytest.raises(PluginError, match="ZeroDivisionError"):
        get_registry().plugins()


def test_disable_and_autoload_settings(make_plugin, site, monkeypatch, install_fake_dist):
    ep = make_plugin("epd", directory=site, drivers=("from-ep",))
    install_fake_dist(site, "hal-ep", "1.0", {"ep-plugin": ep.stem})
    ext = make_plugin("extd", drivers=("from-ext",))
    monkeypatch.setenv("HAL_EXTERNAL_DRIVERS", str(ext))

    monkeypatch.setenv("HAL_DISABLE_PLUGINS", "ep-plugin")
    registry = Registry()
    assert by_name(registry.plugins())["ep-plugin"].status == "disabled"
    assert {e.name for e in registry.drivers()} >= {"from-ext"}
    assert "from-ep" not in {e.name for e in registry.drivers()}

    monkeypatch.setenv("HAL_DISABLE_PLUGINS", "")
    monkeypatch.setenv("HAL_PLUGINS_AUTOLOAD", "0")
    names = {e.name for e in Registry().drivers()}
    assert names == {"from-ext"}  # external drivers still load without autoload

    monkeypatch.setenv("HAL_PLUGINS_AUTOLOAD", "1")
    assert {"from-ep", "from-ext"} <= {e.name for e in Registry().drivers()}
    assert "from-ext" not in {e.name for e in Registry(disabled=[str(ext)]).drivers()}


def test_unknown_name_lists_available_and_suggests(make_plugin):
    registry = external(make_plugin("names", drivers=("local-task", "local-sync")))
    with pytest.raises(UsageError) as info:
        registry.driver("local-tsak")
    message = str(info.value)
    assert "local-sync, local-task" in message and "did you mean 'local-task'" in message
    with pytest.raises(UsageError, match="unknown target backend 'vmvx'"):
        registry.target("vmvx")


def test_same_module_twice_is_loaded_once(make_plugin, site, install_fake_dist):
    # Installed and also named in HAL_EXTERNAL_DRIVERS (a name listed twice there is simply
    # loaded once: tests/test_registry_mistakes.py).
    path = make_plugin("twice", directory=site, drivers=("once",))
    install_fake_dist(site, "hal-twice", "1.0", {"twice": path.stem})
    registry = Registry(external=[path.stem], builtins=())
    first, second = [r for r in registry.plugins() if r.module == path.stem]
    assert first.status == "loaded" and second.status == "failed"
    assert "same module" in second.error
    assert [e.name for e in registry.drivers() if e.name == "once"] == ["once"]  # no clash
    assert registry.driver("once").error is None


def test_missing_external_file_is_reported(tmp_path):
    missing = tmp_path / "nowhere.py"
    (record,) = external(missing).plugins()
    assert record.status == "failed" and "no such file" in record.error


def test_factory_failure_names_plugin_and_distribution(make_plugin):
    body = """
    def create_driver(registry):
        raise OSError("libaccel.so: cannot open shared object file")
    """
    path = make_plugin("badfactory", drivers=("accel",), body=body)
    with pytest.raises(PluginError) as info:
        external(path).create_driver("accel")
    assert "driver 'accel'" in str(info.value) and f"external: {path}" in str(info.value)
    assert "libaccel.so" in str(info.value)


def test_unavailable_named_device_is_never_replaced(make_plugin, monkeypatch):
    gone = make_plugin("gone", drivers=("gpu",), body="UNAVAILABLE = 'no GPU found'\n")
    cpu = make_plugin("cpu", drivers=("cpu",))
    registry = external(gone, cpu)
    with pytest.raises(DeviceUnavailableError, match="no GPU found"):
        registry.create_device("gpu://0")
    monkeypatch.setenv("HAL_DEFAULT_DEVICE", "gpu,cpu")
    assert registry.create_device().id == "cpu://0"  # preference list: first available wins
    monkeypatch.setenv("HAL_DEFAULT_DEVICE", "gpu,missing")
    with pytest.raises(DeviceUnavailableError, match="no GPU found.*missing"):
        registry.create_device()
    monkeypatch.delenv("HAL_DEFAULT_DEVICE")
    with pytest.raises(UsageError, match="unknown driver 'local-task'"):
        registry.create_device()  # built-in default names local-task


def test_get_registry_is_process_wide_and_resettable(make_plugin, monkeypatch):
    monkeypatch.setenv("HAL_PLUGINS_AUTOLOAD", "0")
    monkeypatch.setenv("HAL_EXTERNAL_DRIVERS", str(make_plugin("pw", drivers=("pw",))))
    first = get_registry()
    assert get_registry() is first and [e.name for e in first.drivers()] == ["pw"]
    reset_registry()
    assert get_registry() is not first


def test_core_builtin_plugin_registers_text_importer():
    registry = Registry(autoload=False, external=[])
    (record,) = registry.plugins()
    assert (record.name, record.source, record.status) == (
        "hal_core.builtin_plugin", "builtin", "loaded")
    assert registry.importer("text").plugin == record


def test_builtin_plugins_are_always_registered(make_plugin, site):
    path = make_plugin("builtin", directory=site, drivers=("core-thing",))
    registry = Registry(autoload=False, external=[], builtins=(path.stem,))
    (record,) = registry.plugins()
    assert (record.source, record.distribution) == ("builtin", "hal-core")
    assert registry.driver("core-thing").plugin == record
