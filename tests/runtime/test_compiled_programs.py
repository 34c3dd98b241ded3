"""The runtime on modules from the compiler: edge-case signatures on both models and drivers."""

from __future__ import annotations

import numpy as np
import pytest

from hal_core.runtime import load_module

compile_ir = pytest.importorskip("hal_core.compiler.pipeline").compile

PROGRAM = """func.func @main(%x: tensor<f32>, %m: tensor<0x3xf32>, %c: tensor<3xi1>) -> (tensor<f32>, tensor<0x3xf32>, tensor<3xi1>) {
  %0 = add %x, %x : (tensor<f32>, tensor<f32>) -> tensor<f32>
  %1 = neg %m : (tensor<0x3xf32>) -> tensor<0x3xf32>
  %2 = logical_not %c : (tensor<3xi1>) -> tensor<3xi1>
  return %0, %1, %2 : tensor<f32>, tensor<0x3xf32>, tensor<3xi1>
}

func.func @konst() -> tensor<2xi64> {
  %0 = constant dense<[9223372036854775807, -5]> : tensor<2xi64>
  return %0 : tensor<2xi64>
}

func.func @nothing() -> () {
  return
}
"""


@pytest.fixture(scope="module", params=["async", "inline"])
def module(request):
    return compile_ir(PROGRAM, target_backends="vmvx", execution_model=request.param)


def test_rank0_zero_size_and_bool(module, device_name):
    with load_module(module, device_name) as m:
        x, empty, flags = m.main(np.float32(1.5), np.zeros((0, 3), np.float32),
                                 np.array([True, False, True]))
        assert x.shape == () and x == 3.0
        assert empty.shape == (0, 3) and empty.dtype == np.float32
        np.testing.assert_array_equal(flags, [False, True, False])
        # Python values convert when exact: a float for the f32 scalar, bools for i1.
        np.testing.assert_array_equal(m.main(2.0, np.zeros((0, 3), np.float32),
                                             [False, False, True])[2], [True, True, False])


def test_constant_results_are_private_copies(module, device_name):
    with load_module(module, device_name) as m:
        first = m.konst()
        np.testing.assert_array_equal(first, [2**63 - 1, -5])
        first[:] = 0  # results are writable and do not alias the module's constant
        np.testing.assert_array_equal(m.konst(), [2**63 - 1, -5])
        assert m.nothing() == ()
