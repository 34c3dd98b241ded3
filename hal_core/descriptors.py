"""Light descriptors returned by plugin hooks.

They name things and point at factories by import path ("package.module:attribute"); nothing
heavy is imported until :func:`resolve` is called on a factory, which happens only when the
thing is actually used (never while listing).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any


def resolve(import_path: str) -> Any:
    """Import ``"package.module:attribute"`` and return the attribute."""
    module_name, sep, attr = import_path.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(
            f"expected an import path of the form 'package.module:attribute', got {import_path!r}"
        )
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class DriverInfo:
    """A runtime HAL driver.

    ``factory`` resolves to a callable ``(registry) -> hal_core.hal.Driver``.
    ``probe`` (optional) resolves to a callable ``() -> str | None``: None when the driver can be
    used on this machine, otherwise a one-line reason it cannot (e.g. "no Vulkan loader found").
    A probe that raises or crashes marks the driver failed.
    """

    name: str
    description: str
    factory: str
    probe: str | None = None


@dataclass(frozen=True)
class TargetInfo:
    """A compiler target backend (e.g. ``vmvx``, ``llvm-cpu``).

    ``factory`` resolves to a callable ``() -> TargetBackend`` (see hal_core.compiler).
    ``formats`` lists the executable formats it produces; ``drivers`` the drivers known to run
    them (informational, shown by ``hal targets list``).
    """

    name: str
    description: str
    factory: str
    formats: tuple[str, ...] = ()
    drivers: tuple[str, ...] = ()
    probe: str | None = None


@dataclass(frozen=True)
class LoaderInfo:
    """An executable loader: lets the local (CPU) drivers prepare one executable format.

    ``format`` is the exact format string of the variants it loads (e.g. ``vmvx-bytecode``).
    ``factory`` resolves to a callable ``() -> hal_core.hal.executable.ExecutableLoader``.
    """

    format: str
    description: str
    factory: str
    probe: str | None = None

    @property
    def name(self) -> str:
        return self.format


@dataclass(frozen=True)
class ImporterInfo:
    """A model importer: turns a file (or object) into tensor IR.

    ``extensions`` are the file suffixes it claims (e.g. ``(".mlir", ".hal")``).
    ``factory`` resolves to a callable ``(path_or_bytes, options) -> hal_core.ir.Module``;
    ``options`` (a ``dict[str, str]``, possibly empty) are the importer's own settings, given
    as ``hal compile --<name>-<key>=VALUE`` (``--onnx-input-shape=x:1x3x224x224``) or
    ``hal_core.compile(..., importer_options={"<key>": "VALUE"})``. An importer raises
    :class:`~hal_core.errors.UsageError` for an option it does not know, naming it and the ones
    it knows. A factory taking only ``(path_or_bytes)`` accepts no options; the core refuses
    to pass it any.

    ``tools`` (optional) resolves to an object with what ``hal try`` needs to try a model of
    this format end to end (any method may be left out):

    * ``examples() -> dict[str, str]``: short name -> path of models that come with the
      importer's own dependencies (``squeezenet`` for the onnx package's light model zoo);
    * ``random_weights(source, seed: int) -> tuple[bytes, int]``: the model (a path or bytes)
      with its splat weights (one value repeated, which makes outputs uniform and hides
      errors) replaced by seeded random values: (the model's bytes, how many were replaced);
    * ``reference_runtime() -> str | None``: the name and version of the format's reference
      runtime when it is installed here, else None;
    * ``reference(source, inputs: list[ndarray]) -> list[ndarray]``: that runtime's outputs,
      inputs in the imported function's argument order.
    """

    name: str
    description: str
    factory: str
    extensions: tuple[str, ...] = field(default=())
    probe: str | None = None
    tools: str | None = None
