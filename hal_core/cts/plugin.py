"""pytest plugin (entry point ``pytest11: hal_cts``) that runs the HAL CTS against a driver.

It loads in every pytest run of the environment it is installed in, so without
``--hal-driver`` (or ``--hal-device=URI``, which names the driver too) it only adds its
options: no registry discovery, no numpy, no collection. It needs pytest, which hal-core does
not install (``pip install hal-core[test]``).

A driver declares what it does not support with a class attribute
``cts_unsupported = {"feature": "reason"}``; tests marked ``@pytest.mark.hal_feature("feature")``
are then skipped with that reason (IREE's CTS does the same with tags).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

CTS_DIR = os.path.dirname(os.path.abspath(__file__))


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hal", "HAL conformance tests (CTS)")
    group.addoption(
        "--hal-driver",
        metavar="NAME",
        default=None,
        help="run the HAL CTS suites against the installed driver NAME",
    )
    group.addoption(
        "--hal-device",
        metavar="URI",
        default=None,
        help="device URI for the CTS (default: the driver's default device); alone, it "
        "also names the driver (--hal-device=local-task://?workers=2)",
    )
    group.addoption(
        "--hal-target",
        metavar="NAME",
        default=None,
        help="compile the CTS executables with target backend NAME (default: the first "
        "registered target whose format the device can prepare)",
    )


def _driver_name(config: pytest.Config) -> str | None:
    """``--hal-driver``, else the driver part of ``--hal-device`` (None: the CTS is off)."""
    name = config.getoption("hal_driver", None)
    uri = config.getoption("hal_device", None)
    if name or not uri:
        return name
    return uri.partition("://")[0] or None


def pytest_configure(config: pytest.Config) -> None:
    name = _driver_name(config)
    if not name:
        if config.getoption("hal_device", None):
            raise pytest.UsageError(f"--hal-device={config.getoption('hal_device')}: expected a "
                                    "device URI such as local-task:// (driver://...)")
        return
    config.addinivalue_line(
        "markers",
        "hal_feature(name): the test needs driver feature NAME; skipped when the "
        "driver lists it in cts_unsupported",
    )
    from hal_core.errors import HalError
    from hal_core.registry import get_registry

    uri = config.getoption("hal_device", None)
    if uri and uri.partition("://")[0] != name:
        raise pytest.UsageError(f"--hal-device={uri} is not a device of driver {name!r} "
                                f"(--hal-driver={name}); give a URI like {name}://, or leave "
                                f"out --hal-driver to test the URI's driver")
    if config.getoption("hal_target", None):
        os.environ["HAL_CTS_TARGET"] = config.getoption("hal_target")
    try:
        driver = get_registry().create_driver(name)
    except HalError as e:
        given = f"--hal-driver={name}" if config.getoption("hal_driver", None) else \
            f"--hal-device={uri}"
        raise pytest.UsageError(f"{given}: {e}") from None
    if uri:  # one clear line now rather than a setup error in every test
        try:
            driver.create_device(uri).close()
        except Exception as e:  # noqa: BLE001 - any failure to create it ends the run
            raise pytest.UsageError(f"--hal-device={uri}: cannot create the device: "
                                    f"{type(e).__name__}: {e}") from None
    config._hal_cts_driver = driver  # type: ignore[attr-defined]
    # The CTS replaces the project's default test paths; explicit paths are run as well.
    if config.args_source == pytest.Config.ArgsSource.ARGS:
        config.args.append(CTS_DIR)
    else:
        config.args[:] = [CTS_DIR]


def pytest_ignore_collect(collection_path: Any, config: pytest.Config) -> bool | None:
    # The suites need a driver; without --hal-driver they are never collected, even when a
    # directory containing the installed package is named on the command line.
    if _driver_name(config):
        return None
    path = str(collection_path)
    if path == CTS_DIR or path.startswith(CTS_DIR + os.sep):
        return True
    return None


def skip_unsupported(request: pytest.FixtureRequest, driver: Any) -> None:
    """Skip the requesting test when it needs a feature the driver declares unsupported."""
    unsupported = getattr(driver, "cts_unsupported", None) or {}
    for mark in request.node.iter_markers("hal_feature"):
        for feature in mark.args:
            if feature in unsupported:
                pytest.skip(
                    f"driver {driver.name!r} does not support {feature!r}: {unsupported[feature]}"
                )


@pytest.fixture(scope="session")
def hal_driver(request: pytest.FixtureRequest) -> Any:
    """The driver named by ``--hal-driver``, created through the plugin registry."""
    driver = getattr(request.config, "_hal_cts_driver", None)
    if driver is None:
        pytest.skip("the HAL CTS needs --hal-driver=NAME")
    return driver


@pytest.fixture
def hal_device(hal_driver: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh device of the driver under test (``--hal-device`` or the default), closed after."""
    uri = request.config.getoption("hal_device")
    device = hal_driver.create_device(uri) if uri else hal_driver.create_default_device()
    try:
        yield device
    finally:
        device.close()
