"""hal: a Python hardware abstraction layer and compiler for ML programs, after IREE's HAL."""

__version__ = "0.1.0"
