"""Drivers: enumerate the devices of one kind and create them from URIs.

A device URI is ``DRIVER://[PATH][?key=value&...]`` (``local-task://?workers=4``); the driver
name alone (``local-task``) means its default device.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

from hal_core.errors import UsageError


@dataclass(frozen=True)
class DeviceInfo:
    """One device a driver can create: its URI, a readable name and JSON-serialisable properties."""

    uri: str
    name: str
    properties: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


def parse_device_uri(uri: str, driver_name: str) -> tuple[str, dict[str, str]]:
    """Split ``uri`` into (path, params), checking that it names ``driver_name``."""
    if not isinstance(uri, str):
        raise UsageError(f"device URI must be a string like '{driver_name}://', got {uri!r}")
    if "://" not in uri:
        if uri == driver_name:
            return "", {}
        raise UsageError(
            f"device URI {uri!r} is not a {driver_name} URI; expected "
            f"'{driver_name}://[path][?key=value]'"
        )
    parts = urlsplit(uri)
    if parts.scheme != driver_name:
        raise UsageError(
            f"device URI {uri!r} names driver {parts.scheme!r}, not "
            f"{driver_name!r}; use '{driver_name}://...'"
        )
    try:
        params = dict(
            parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
        )
    except ValueError:
        raise UsageError(
            f"device URI {uri!r}: malformed parameters {parts.query!r}; expected "
            f"key=value pairs joined by '&'"
        ) from None
    return parts.netloc + parts.path, params


class Driver:
    """Base of every HAL driver. Subclasses implement the two abstract methods.

    ``cts_unsupported`` maps CTS feature names to the reason the driver lacks them; the
    conformance suite skips those tests with that reason.
    """

    name: str = ""
    cts_unsupported: ClassVar[dict[str, str]] = {}

    def __init__(self, registry: Any = None) -> None:
        self.registry = registry

    def __repr__(self) -> str:
        return f"<Driver {self.name}>"

    def query_available_devices(self) -> list[DeviceInfo]:
        raise NotImplementedError(f"driver {self.name} does not enumerate devices")

    def create_device(self, uri: str | None = None) -> Any:
        """Create the device named by ``uri`` (None: the default device)."""
        raise NotImplementedError(f"driver {self.name} does not create devices")

    def create_default_device(self) -> Any:
        return self.create_device(None)
