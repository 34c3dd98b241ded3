"""``load_module``: a module on a device, whose functions take and return numpy arrays.

Loading does all the work a call can do once: verify the module, create (or take) the device,
pick a variant per executable, prepare the executables, make the constants' buffers, and build
each function's call path (:mod:`hal_core.runtime.async_model` records the host program into a
reusable command buffer; :mod:`hal_core.runtime.inline_model` compiles it into direct kernel
calls). A call then only checks and binds its arguments, runs, and returns the outputs.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Iterator, Mapping
from typing import Any

from hal_core.errors import HalError, UsageError
from hal_core.module.model import ExecutionModel, Function, Module
from hal_core.runtime.arguments import arity_error, convert_argument, signature_text

log = logging.getLogger(__name__)


class LoadedFunction:
    """A callable function of a loaded module: ``f(*arrays) -> array | tuple[array, ...]``."""

    def __init__(self, function: Function) -> None:
        self.function = function
        self.name = function.name
        self.inputs = function.inputs
        self.outputs = function.outputs

    @property
    def signature(self) -> str:
        return signature_text(self.function)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.signature}>"

    def __call__(self, *args: Any) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        """Drop what the function holds (buffers, command buffer); calls then fail."""


class HostFunction(LoadedFunction):
    """What both execution models share per call: argument checks, staging copies of
    arguments that cannot be bound in place, result memory, and the lock that serialises
    calls (staging buffers and the transient arena are reused across calls).

    A subclass implements :meth:`_new_staging` and calls :meth:`_checked_arguments`,
    :meth:`_staged` and :meth:`_results` from its ``__call__`` while holding ``_lock``.
    """

    def __init__(self, module_name: str, function: Function) -> None:
        import threading

        import numpy as np

        from hal_core.runtime.memory import ResultMemory

        super().__init__(function)
        self._module_name = module_name
        self._n_in = len(function.inputs)
        self._ndarray = np.ndarray
        self._copyto = np.copyto
        self._specs = tuple((tuple(t.shape), np.dtype(t.dtype)) for t in function.inputs)
        self._out_specs = tuple((t.byte_size, np.dtype(t.dtype), tuple(t.shape))
                                for t in function.outputs)
        self._staging: list[Any] = [None] * self._n_in  # (binding, typed view), made on need
        self._memory = ResultMemory()
        self._lock = threading.Lock()
        self._closed = False

    def _new_staging(self, size: int) -> tuple[Any, Any]:
        """A reusable staging area of ``size`` bytes: (what gets bound, its uint8 array)."""
        raise NotImplementedError

    def _checked_arguments(self, args: tuple[Any, ...]) -> list[Any]:
        """The arguments as arrays of exactly the declared shapes and dtypes (call under lock)."""
        if len(args) != self._n_in:
            raise arity_error(self.function, len(args))
        if self._closed:
            raise UsageError(f"{self._module_name}.{self.name}: the module was closed; "
                             f"load it again")
        ndarray, specs, out = self._ndarray, self._specs, []
        for i, a in enumerate(args):
            shape, dtype = specs[i]
            if type(a) is not ndarray or a.shape != shape or a.dtype != dtype:
                a = convert_argument(self.function, i, a)
            out.append(a)
        return out

    def _staged(self, i: int, array: Any) -> Any:
        """Copy argument ``i`` into its staging area (made once, reused); returns the binding."""
        entry = self._staging[i]
        if entry is None:
            from hal_core.runtime.memory import allocation_failed

            shape, dtype = self._specs[i]
            size = self.inputs[i].byte_size
            try:
                binding, raw = self._new_staging(size)
            except (MemoryError, ValueError) as e:
                raise allocation_failed(f"{self.name} argument {i} staging", size, e) from e
            entry = self._staging[i] = (binding, raw.view(dtype).reshape(shape))
        self._copyto(entry[1], array, casting="no")
        return entry[0]

    def _results(self, raws: list[Any]) -> Any:
        """The caller's results: typed views of the raw uint8 result arrays (no copy)."""
        outs = tuple(r.view(dtype).reshape(shape)
                     for r, (_, dtype, shape) in zip(raws, self._out_specs))
        return outs[0] if len(outs) == 1 else outs

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._memory.clear()
            self._staging = [None] * self._n_in
            self._release()

    def _release(self) -> None:
        """Drop the model's own resources (called by close, under the lock)."""


class LoadedModule:
    """A module loaded on a device. Functions are ``m.main``, ``m["main"]``, ``m.functions``."""

    def __init__(self, module: Module, device: Any, owns_device: bool,
                 functions: dict[str, LoadedFunction], variants: list[Any]) -> None:
        self.module = module
        self.name = module.name
        self.device = device
        self.execution_model = module.execution_model
        self.variants = tuple(variants)  # the variant chosen for each executable
        self._owns_device = owns_device
        self._functions = functions
        self.closed = False
        for name, fn in functions.items():
            # Plain instance attributes: ``m.main`` costs one dict lookup per call.
            if name.isidentifier() and not hasattr(type(self), name):
                self.__dict__[name] = fn

    @property
    def functions(self) -> Mapping[str, LoadedFunction]:
        return _ReadOnly(self._functions)

    def _missing(self, name: str) -> str:
        names = sorted(self._functions)
        message = f"module {self.name!r} has no function {name!r}; it has {', '.join(names)}"
        close = difflib.get_close_matches(name, names, n=1)
        return message + (f"; did you mean {close[0]!r}?" if close else "")

    def __getitem__(self, name: str) -> LoadedFunction:
        if not isinstance(name, str):
            raise UsageError(f"module {self.name!r}: functions are looked up by name (a str), "
                             f"got {type(name).__name__} {name!r}; it has "
                             f"{', '.join(sorted(self._functions))}")
        fn = self._functions.get(name)
        if fn is None:
            raise UsageError(self._missing(name))
        return fn

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise AttributeError(self._missing(name))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._functions

    def __repr__(self) -> str:
        where = getattr(self.device, "id", self.device)
        state = " closed" if self.closed else ""
        return (f"<LoadedModule {self.name!r} on {where} ({self.execution_model.name.lower()}): "
                f"{', '.join(self._functions)}{state}>")

    def __enter__(self) -> LoadedModule:  # noqa: PYI034 - typing.Self needs 3.11
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the functions' buffers and, if ``load_module`` created it, the device."""
        if self.closed:
            return
        self.closed = True
        for fn in self._functions.values():
            fn.close()
        if self._owns_device and self.device is not None:
            self.device.close()


class _ReadOnly(Mapping):
    def __init__(self, data: dict[str, LoadedFunction]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> LoadedFunction:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return repr({k: v.signature for k, v in self._data.items()})


def _as_module(module_or_path: Any) -> Module:
    if isinstance(module_or_path, Module):
        from hal_core.module.validate import check_module

        check_module(module_or_path, f"module {module_or_path.name!r}",
                     "fix the code that built it, or compile it with `hal compile`")
        return module_or_path
    if isinstance(module_or_path, (str, os.PathLike)):
        from hal_core.module.reader import load_module_file

        return load_module_file(module_or_path)
    raise UsageError(f"load_module expects a Module or the path of a .halm file, got "
                     f"{type(module_or_path).__name__}")


def _device(device: Any, registry: Any) -> tuple[Any, bool]:
    from hal_core.hal.device import Device

    if isinstance(device, Device):
        if device.closed:
            raise UsageError(f"load_module: device {device.id} is closed; create a new one")
        return device, False
    if device is None or isinstance(device, str):
        return registry.create_device(device), True
    raise UsageError(f"load_module: device must be a driver name or URI ('local-task', "
                     f"'local-sync://'), a Device, or None for the default; got "
                     f"{type(device).__name__}")


def load_module(module_or_path: Module | str | os.PathLike[str],
                device: str | Any | None = "local-task", *, registry: Any = None
                ) -> LoadedModule:
    """Load a module (a :class:`Module` or a ``.halm`` path) on ``device``.

    ``device`` is a driver name or URI (``"local-sync"``, ``"local-task://?workers=4"``), a
    :class:`~hal_core.hal.device.Device` (not closed by :meth:`LoadedModule.close`), or None for
    the registry's default (``HAL_DEFAULT_DEVICE``). A named device is never replaced by another.
    Raises IncompatibleModuleError when an executable has no variant the device can run.

    Modules compiled with ``--execution-model=inline`` run their kernels on the calling thread
    through the executable loaders; the device then only chooses the variants (formats it can
    prepare, features it has), so name a local device (``local-sync`` is the lightest).
    """
    from hal_core.registry import get_registry
    from hal_core.runtime.selection import select_variants

    registry = registry if registry is not None else get_registry()
    module = _as_module(module_or_path)
    dev, owns = _device(device, registry)
    try:
        variants = select_variants(module, dev, registry)
        if module.execution_model is ExecutionModel.INLINE:
            from hal_core.runtime.inline_model import build_inline_functions

            functions = build_inline_functions(module, variants, registry)
        else:
            from hal_core.runtime.async_model import build_async_functions

            functions = build_async_functions(module, variants, dev)
    except BaseException:
        if owns:
            dev.close()
        raise
    log.debug("loaded module %r on %s: %s", module.name, dev.id,
              ", ".join(f"{v.target_backend}/{v.format}" for v in variants))
    return LoadedModule(module, dev, owns, functions, variants)


def wrap_execution_error(fn_name: str, module_name: str, device: str,
                         error: BaseException) -> HalError:
    """A HalRuntimeError for a failed call, chained to the original (non-hal) cause."""
    from hal_core.errors import HalRuntimeError

    root = error
    while isinstance(root, HalError) and root.__cause__ is not None:
        root = root.__cause__
    wrapped = HalRuntimeError(f"{module_name}.{fn_name} on {device} failed: {error}")
    wrapped.__cause__ = root
    return wrapped
