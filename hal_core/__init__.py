"""hal: a Python hardware abstraction layer and compiler for ML programs, after IREE's HAL."""

from typing import Any

__version__ = "0.1.0"

# Public names resolved on first use, so `import hal_core` (and `hal drivers list`) stays
# free of numpy and the runtime: name -> the module that defines it.
_LAZY = {
    "load_module": "hal_core.runtime",
    "LoadedModule": "hal_core.runtime",
    "compile": "hal_core.compiler.pipeline",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hal_core' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
