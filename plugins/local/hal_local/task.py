"""local-task: a pool of worker threads runs submissions and spreads dispatches over cores.

The machinery is the core's :class:`hal_core.hal.local.pooled_device.PooledLocalDevice`; this
module names the driver and parses its URI (``local-task://?workers=N``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from hal_core.errors import UsageError
from hal_core.hal.local.device import LocalDriver
from hal_core.hal.local.pooled_device import PooledLocalDevice


class TaskDevice(PooledLocalDevice):
    pool_name = "local-task"


class TaskDriver(LocalDriver):
    name = "local-task"
    device_class = TaskDevice
    params: ClassVar[dict[str, str]] = {
        "workers": "number of worker threads, an int >= 1 (default: usable cores)"
    }

    def create_device(self, uri: str | None = None) -> TaskDevice:
        uri, params = self._parse(uri)
        workers = self.default_workers()
        device_id = f"{self.name}://"
        if "workers" in params:
            text = params["workers"]
            if not text.isdigit() or int(text) < 1:
                raise UsageError(f"device URI {uri!r}: workers must be an int >= 1, got {text!r}")
            workers = int(text)
            device_id = f"{self.name}://?workers={workers}"
        return TaskDevice(self, device_id, workers)


def create_driver(registry: Any) -> TaskDriver:
    return TaskDriver(registry)
