"""Argument checking: count, shape, dtype; exact conversion of Python values."""

from __future__ import annotations

import numpy as np
import pytest
from runtime_modules import add_module

from hal_core.errors import UsageError
from hal_core.runtime import ArgumentError, load_module


@pytest.fixture(scope="module")
def f32():
    with load_module(add_module(), "local-sync") as m:
        yield m.main


@pytest.fixture(scope="module", params=["async", "inline"])
def i32(request):
    from hal_core.module.model import ExecutionModel

    model = ExecutionModel.INLINE if request.param == "inline" else ExecutionModel.ASYNC
    with load_module(add_module(dtype="int32", model=model), "local-sync") as m:
        yield m.main


def test_argument_error_is_a_usage_error():
    assert issubclass(ArgumentError, UsageError)


def test_wrong_count(f32):
    with pytest.raises(ArgumentError, match=r"'main' takes 2 arguments, got 1; signature: "
                                            r"main\(tensor<4xf32>, tensor<4xf32>\)"):
        f32(np.zeros(4, np.float32))


def test_wrong_shape_names_argument_expected_and_given(f32):
    with pytest.raises(ArgumentError) as info:
        f32(np.zeros(4, np.float32), np.zeros((2, 2), np.float32))
    message = str(info.value)
    assert "argument 1" in message and "tensor<4xf32>" in message and "(2, 2)" in message


def test_wrong_dtype_is_not_cast(f32):
    with pytest.raises(ArgumentError, match=r"argument 0: expected tensor<4xf32>.*got dtype "
                                            r"float64.*astype\('float32'\)"):
        f32(np.zeros(4), np.zeros(4, np.float32))


def test_python_lists_convert_when_exact(f32, i32):
    np.testing.assert_array_equal(f32([1, 2, 3, 4], [0.5, 0.5, 0.5, 0.5]), [1.5, 2.5, 3.5, 4.5])
    np.testing.assert_array_equal(i32((1, 2, 3, 4), [10, 20, 30, -40]), [11, 22, 33, -36])
    np.testing.assert_array_equal(i32(np.arange(4, dtype=np.int32), [1] * 4), [1, 2, 3, 4])


@pytest.mark.parametrize("value, pattern", [
    ([1.5, 2, 3, 4], "floats are not converted to int32"),
    ([2**40, 0, 0, 0], "1099511627776 is out of range for int32"),
    ([True, False, True, True], "booleans and numbers"),
    (["a", "b", "c", "d"], "not a \\(nested\\) list of numbers"),
    ([1, 2, 3], "shape \\(3,\\)"),
    ("1234", "as a numpy array"),
    (np.int64(3), "numpy int64 scalar"),
])
def test_inexact_or_odd_values_are_refused(i32, value, pattern):
    with pytest.raises(ArgumentError, match=pattern):
        i32(np.zeros(4, np.int32), value)


def test_int_that_float32_cannot_hold_is_refused(f32):
    with pytest.raises(ArgumentError, match="exactly to float32"):
        f32([2**25 + 1, 0, 0, 0], np.zeros(4, np.float32))
    with pytest.raises(ArgumentError, match="overflows float32"):
        f32([1e300, 0.0, 0.0, 0.0], np.zeros(4, np.float32))


@pytest.fixture(scope="module", params=["int64", "uint64"])
def wide(request):
    with load_module(add_module(dtype=request.param), "local-sync") as m:
        yield request.param, m.main


def test_python_ints_out_of_range_for_64_bit_integers_are_refused(wide):
    # They used to wrap silently (2**63 -> -2**63 for int64, -1 -> 2**64-1 for uint64).
    dtype, f = wide
    info = np.iinfo(dtype)
    zeros = np.zeros(4, dtype)
    for bad in (info.max + 1, info.min - 1, 2**64, -(2**64), 2**70):
        with pytest.raises(ArgumentError, match=f"{bad} is out of range for {dtype}"):
            f([0, bad, 0, 0], zeros)
        with pytest.raises(ArgumentError, match="out of range"):
            f(zeros, [bad, 0, 0, 0])
    edge = [int(info.min), int(info.max), 0, 1]
    np.testing.assert_array_equal(f(edge, zeros), np.array(edge, dtype))
