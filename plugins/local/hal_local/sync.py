"""local-sync: every queue operation runs inline on the thread that makes it possible.

That is the calling thread when the waits are already reached; otherwise the submission is
parked and runs on the thread that signals its last wait (the host or another submission),
so submitting work that waits on a later host signal never deadlocks.
"""

from __future__ import annotations

from typing import Any, ClassVar

from hal_core.hal.local.device import InlineLocalDevice, LocalDriver


class SyncDevice(InlineLocalDevice):
    pass


class SyncDriver(LocalDriver):
    name = "local-sync"
    device_class = SyncDevice
    params: ClassVar[dict[str, str]] = {}

    def default_workers(self) -> int:
        return 1

    def create_device(self, uri: str | None = None) -> SyncDevice:
        uri, _ = self._parse(uri)
        return SyncDevice(self, f"{self.name}://", 1)


def create_driver(registry: Any) -> SyncDriver:
    return SyncDriver(registry)
