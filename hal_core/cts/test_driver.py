"""CTS: driver and device enumeration, creation by URI, device queries, close."""

from __future__ import annotations

import json

import pytest

from hal_core.errors import HalError, IncompatibleModuleError, UsageError
from hal_core.hal import DeviceInfo


def test_driver_has_its_name(hal_driver):
    assert isinstance(hal_driver.name, str) and hal_driver.name


def test_enumerates_devices_with_uris_and_json_properties(hal_driver):
    infos = hal_driver.query_available_devices()
    assert infos, f"driver {hal_driver.name} lists no devices"
    for info in infos:
        assert isinstance(info, DeviceInfo)
        assert info.uri.startswith(f"{hal_driver.name}://")
        assert isinstance(info.name, str) and info.name
        json.dumps(info.properties)


def test_creates_every_enumerated_device_by_uri(hal_driver):
    for info in hal_driver.query_available_devices():
        device = hal_driver.create_device(info.uri)
        try:
            assert device.id.startswith(f"{hal_driver.name}://")
        finally:
            device.close()


def test_default_device(hal_device, hal_driver):
    assert hal_device.id.startswith(f"{hal_driver.name}://")
    json.dumps(hal_device.properties())


def test_uri_of_another_driver_is_a_usage_error(hal_driver):
    with pytest.raises(UsageError, match=hal_driver.name):
        hal_driver.create_device("no-such-driver-xyz://")


def test_unknown_uri_parameter_is_a_usage_error_naming_it(hal_driver):
    with pytest.raises(UsageError, match="bogus_param"):
        hal_driver.create_device(f"{hal_driver.name}://?bogus_param=1")


def test_formats_and_features(hal_device):
    formats = hal_device.query_formats()
    assert isinstance(formats, tuple) and all(isinstance(f, str) for f in formats)
    for f in formats:
        assert hal_device.can_prepare(f)
        assert hal_device.executable_cache.can_prepare(f)
    assert not hal_device.can_prepare("no-such-format")
    features = hal_device.query_features()
    assert isinstance(features, frozenset) and all(isinstance(f, str) for f in features)


def test_preparing_an_unknown_format_names_the_formats_it_can(hal_device):
    with pytest.raises(IncompatibleModuleError, match="no-such-format") as info:
        hal_device.executable_cache.prepare("no-such-format", b"\0", [])
    for f in hal_device.query_formats():
        assert f in str(info.value)


def test_close_is_idempotent_and_closed_devices_refuse_work(hal_driver):
    device = hal_driver.create_default_device()
    device.close()
    device.close()
    with pytest.raises(HalError):
        device.create_semaphore()
    with pytest.raises(HalError):
        device.queue_execute([], [], [])
