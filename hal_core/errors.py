"""The one exception hierarchy of hal.

Every message says what was expected, what was found and what to do next, naming the plugin,
file, op or argument involved. The CLI prints ``str(error)`` on one line; tracebacks only with
``--debug``.
"""

from __future__ import annotations


class HalError(Exception):
    """Base of every error hal raises on purpose."""


class UsageError(HalError):
    """The user asked for something malformed or unknown (bad flag, unknown driver name).

    The CLI exits with status 2 for these.
    """


class PluginError(HalError):
    """A plugin failed to import, declared an incompatible API, raised in a hook, or clashed."""


class ModuleFormatError(HalError):
    """A module file is truncated, corrupted, or not a hal module at all."""


class IncompatibleModuleError(HalError):
    """A module is well formed but cannot run here (no variant fits the device, wrong version)."""


class CompileError(HalError):
    """The compiler rejected a program (parse error, verification failure, unsupported op)."""


class UnsupportedKernelError(CompileError):
    """A target backend declines one kernel (an op, dtype or shape it does not lower).

    Raised from ``TargetBackend.compile``; the message names the kernel and why. The compiler
    then keeps the other targets' variants for that kernel and fails only when no target
    produced one.
    """


class IRParseError(CompileError):
    """Text IR could not be parsed; carries the line, column and offending token."""

    def __init__(self, message: str, *, line: int, column: int, token: str | None = None,
                 source_name: str = "<string>") -> None:
        self.line = line
        self.column = column
        self.token = token
        self.source_name = source_name
        where = f"{source_name}:{line}:{column}"
        found = f" (at {token!r})" if token is not None else ""
        super().__init__(f"{where}: {message}{found}")


class VerificationError(CompileError):
    """A tensor IR program failed verification (types, shapes, operand counts)."""


class HalRuntimeError(HalError):
    """Execution failed on a device: a failed dispatch, a failed semaphore, a lost device."""


class DeviceUnavailableError(HalRuntimeError):
    """A named driver or device exists but cannot be used here (probe failed, no hardware)."""


class TimeoutExpiredError(HalRuntimeError):
    """A wait (semaphore, fence, queue) did not finish within its timeout."""
