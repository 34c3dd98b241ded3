"""A fake plugin registry and a pure-Python executable format (``test-python``) for unit tests.

The payload names a kernel of :data:`KERNELS`. Every ``run`` call is recorded (thread, tile)
so tests can check how a driver spread a dispatch.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hal_core.descriptors import LoaderInfo
from hal_core.errors import HalRuntimeError, ModuleFormatError
from hal_core.hal.executable import EntryPoint, ExecutableLoader, LocalExecutable

FORMAT = "test-python"


def _ids(wg, first, last, bindings, constants):
    out = bindings[0].view("uint32")
    for i in range(first, last):
        out[i] = i + constants[0]


def _add(wg, first, last, bindings, constants):
    a, b, out = (x.view("float32") for x in bindings)
    out[first:last] = a[first:last] + b[first:last]


def _hal_fail(wg, first, last, bindings, constants):
    raise HalRuntimeError(f"kernel failed on workgroups [{first}, {last})")


def _py_fail(wg, first, last, bindings, constants):
    raise ZeroDivisionError("division by zero in kernel")


KERNELS = {"ids": _ids, "add": _add, "hal_fail": _hal_fail, "py_fail": _py_fail}


class PythonExecutable(LocalExecutable):
    format = FORMAT

    def __init__(self, kernels: list, entry_points: tuple[EntryPoint, ...]) -> None:
        self.kernels = kernels
        self.entry_points = entry_points
        self.calls: list[tuple[str, int, int, int]] = []  # (thread name, entry, first, last)
        self._lock = threading.Lock()

    def run(
        self,
        entry: int,
        workgroup_count: tuple[int, int, int],
        first: int,
        last: int,
        bindings: Sequence[Any],
        constants: Sequence[int],
    ) -> None:
        with self._lock:
            self.calls.append((threading.current_thread().name, entry, first, last))
        self.kernels[entry](workgroup_count, first, last, bindings, constants)


class PythonLoader(ExecutableLoader):
    format = FORMAT

    def load(
        self, payload: bytes | memoryview, entry_points: Sequence[EntryPoint]
    ) -> PythonExecutable:
        names = bytes(payload).decode().split(",")
        unknown = [n for n in names if n not in KERNELS]
        if unknown or len(names) != len(entry_points):
            raise ModuleFormatError(
                f"test-python payload {bytes(payload)!r}: unknown kernels "
                f"{unknown} or not one per entry point"
            )
        return PythonExecutable([KERNELS[n] for n in names], tuple(entry_points))


@dataclass(frozen=True)
class Registered:
    info: LoaderInfo
    plugin: str = "tests.hal"


class FakeRegistry:
    """Offers exactly what drivers use: ``loaders()`` and ``create_loader(format)``."""

    def __init__(self, loader: ExecutableLoader | None = None) -> None:
        self.loader = loader or PythonLoader()
        self.created = 0

    def loaders(self) -> list[Registered]:
        return [Registered(LoaderInfo(self.loader.format, "test loader", "tests:loader"))]

    def create_loader(self, format: str) -> ExecutableLoader:
        self.created += 1
        return self.loader
