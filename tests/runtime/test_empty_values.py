"""Regression test: a kernel reading an empty computed value (issue 6).

``matmul(exp(%a: 2x0), %b: 0x3)``: the empty intermediate takes no arena bytes, so the
function has no transient size, yet the matmul binds it; the async model used to fail at load
("expected a Buffer ..., got NoneType").
"""

from __future__ import annotations

import numpy as np
import pytest

import hal_core

SOURCE = """func.func @main(%a: tensor<2x0xf32>, %b: tensor<0x3xf32>) -> tensor<2x3xf32> {
  %0 = exp %a : (tensor<2x0xf32>) -> tensor<2x0xf32>
  %1 = matmul %0, %b : (tensor<2x0xf32>, tensor<0x3xf32>) -> tensor<2x3xf32>
  return %1 : tensor<2x3xf32>
}"""


@pytest.mark.parametrize("model", ["async", "inline"])
def test_kernel_reading_an_empty_computed_value(device_name, model):
    module = hal_core.compile(SOURCE, target_backends=["vmvx"], execution_model=model)
    with hal_core.load_module(module, device_name) as m:
        out = m.main(np.zeros((2, 0), np.float32), np.zeros((0, 3), np.float32))
    np.testing.assert_array_equal(out, np.zeros((2, 3), np.float32))
