"""The runtime: load a module on a device and call its functions with numpy arrays.

>>> m = load_module("out.halm", device="local-sync")
>>> m.main(a, b)                     # one result: an array; several: a tuple

See :mod:`hal_core.runtime.loaded` (loading, variant selection), :mod:`.async_model` (the
default: a reusable command buffer per function) and :mod:`.inline_model` (direct kernel
calls, for modules compiled with ``--execution-model=inline``). :mod:`.io_format` parses and
prints IREE's tensor syntax for the tools.
"""

from hal_core.runtime.arguments import ArgumentError
from hal_core.runtime.loaded import LoadedFunction, LoadedModule, load_module

__all__ = ["ArgumentError", "LoadedFunction", "LoadedModule", "load_module"]
