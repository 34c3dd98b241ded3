"""Checking and converting the arguments of a module function call.

Policy (the same for the async and inline models):

* numpy arrays must have exactly the declared shape and dtype; they are never cast or
  broadcast (a float64 array passed for a float32 input is an error, as in IREE). Any memory
  layout is accepted: non-contiguous or unaligned arrays are copied, the rest used in place.
* Python scalars, lists and tuples (and numpy scalars) are converted to the declared dtype when
  that loses nothing: bools only to bool; ints to integer dtypes that hold them and to float
  dtypes that represent them exactly; floats only to float dtypes (rounded to the dtype's
  precision, as a float literal in the IR would be). Their shape must still match.

Every failure is an :class:`ArgumentError` naming the function, the argument index, what was
expected and what was given.
"""

from __future__ import annotations

from typing import Any

from hal_core.errors import UsageError
from hal_core.module.describe import signature_text as _types_text
from hal_core.module.describe import tensor_text


class ArgumentError(UsageError):
    """A function was called with the wrong number, shape, dtype or kind of arguments."""


def signature_text(function: Any) -> str:
    """``main(tensor<4xf32>) -> (tensor<4xf32>)``: the name and types, for messages."""
    return function.name + _types_text(function)


def arity_error(function: Any, given: int) -> ArgumentError:
    n = len(function.inputs)
    return ArgumentError(f"function {function.name!r} takes {n} argument{'s' * (n != 1)}, "
                         f"got {given}; signature: {signature_text(function)}")


def _given(value: Any) -> str:
    import numpy as np

    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    return f"{type(value).__name__} {value!r}"[:120]


def convert_argument(function: Any, index: int, value: Any) -> Any:
    """Return ``value`` as an array of input ``index``'s shape and dtype, or raise."""
    import numpy as np

    t = function.inputs[index]
    shape, dtype = tuple(t.shape), np.dtype(t.dtype)
    expected = f"{tensor_text(shape, t.dtype)} (shape {shape}, dtype {dtype})"
    where = f"function {function.name!r} argument {index}"
    if isinstance(value, np.ndarray):
        if value.shape != shape:
            raise ArgumentError(f"{where}: expected {expected}, got an array of shape "
                                f"{value.shape}; reshape it (arguments are never broadcast)")
        if value.dtype != dtype:
            raise ArgumentError(f"{where}: expected {expected}, got dtype {value.dtype}; convert "
                                f"it with .astype({dtype.name!r}) (arguments are never cast)")
        return value
    if isinstance(value, np.generic):
        if value.dtype != dtype:
            raise ArgumentError(f"{where}: expected {expected}, got a numpy {value.dtype} "
                                f"scalar; pass numpy.{dtype.name}(value)")
        return _reshaped(np.asarray(value), shape, where, expected)
    if not isinstance(value, (bool, int, float, list, tuple)):
        raise ArgumentError(f"{where}: expected {expected} as a numpy array (or a Python "
                            f"number/list that converts exactly), got {_given(value)}")
    if dtype.kind in "iu":
        ints = _python_ints(value)
        if ints is not None:  # checked as Python ints: numpy would wrap or go via float64
            info = np.iinfo(dtype)
            bad = next((v for v in ints if not info.min <= v <= info.max), None)
            if bad is not None:
                raise ArgumentError(f"{where}: expected {expected}; {bad} is out of range for "
                                    f"{dtype.name} ({info.min}..{info.max})")
            if ints:
                try:
                    raw = np.array(value, dtype=dtype)
                except ValueError as e:  # ragged nesting
                    raise ArgumentError(f"{where}: expected {expected}; cannot make an array "
                                        f"of {_given(value)}: {e}") from None
                return _reshaped(raw, shape, where, expected)
    try:
        raw = np.asarray(value)
    except (ValueError, OverflowError) as e:
        raise ArgumentError(f"{where}: expected {expected}; cannot make an array of "
                            f"{_given(value)}: {e}") from None
    if raw.dtype.kind not in "biuf":
        raise ArgumentError(f"{where}: expected {expected}; {_given(value)} is not a "
                            f"(nested) list of numbers")
    raw = _reshaped(raw, shape, where, expected)
    return _exact(raw, dtype, where, expected, value)


def _python_ints(value: Any) -> list[int] | None:
    """The leaves of a Python int or (nested) list of them; None if any leaf is not an int."""
    if type(value) is int:
        return [value]
    if not isinstance(value, (list, tuple)):
        return None
    out: list[int] = []
    for v in value:
        leaves = _python_ints(v)
        if leaves is None:
            return None
        out += leaves
    return out


def _reshaped(raw: Any, shape: tuple[int, ...], where: str, expected: str) -> Any:
    if raw.shape != shape:
        raise ArgumentError(f"{where}: expected {expected}, got a value of shape {raw.shape}")
    return raw


def _exact(raw: Any, dtype: Any, where: str, expected: str, value: Any) -> Any:
    import numpy as np

    src, dst = raw.dtype.kind, dtype.kind
    if (src == "b") != (dst == "b"):
        raise ArgumentError(f"{where}: expected {expected}; booleans and numbers do not convert "
                            f"into each other, got {_given(value)}")
    if src == "f" and dst != "f":
        raise ArgumentError(f"{where}: expected {expected}; floats are not converted to "
                            f"{dtype.name}, got {_given(value)}")
    if src == "f":
        with np.errstate(over="ignore"):
            converted = raw.astype(dtype)
        if not np.array_equal(np.isfinite(converted), np.isfinite(raw)):
            raise ArgumentError(f"{where}: expected {expected}; a value overflows {dtype.name}")
        return converted
    if src in "iu" and dst in "iu" and raw.size:
        # Compare as Python ints: numpy compares uint64 with int64 through float64, and a
        # cast round trip cannot see 2**63 wrap to int64 or -1 wrap to uint64.
        info, lo, hi = np.iinfo(dtype), int(raw.min()), int(raw.max())
        if lo < info.min or hi > info.max:
            bad = lo if lo < info.min else hi
            raise ArgumentError(f"{where}: expected {expected}; {bad} is out of range for "
                                f"{dtype.name} ({info.min}..{info.max})")
    with np.errstate(all="ignore"):
        converted = raw.astype(dtype)
        back = converted.astype(raw.dtype) if src != "b" else converted
    if src != "b" and not np.array_equal(back, raw):
        raise ArgumentError(f"{where}: expected {expected}; {_given(value)} does not convert "
                            f"exactly to {dtype.name}")
    return converted
