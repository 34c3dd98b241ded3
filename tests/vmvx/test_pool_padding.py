"""avg_pool2d where a window holds only padding (issue 6).

Chosen semantics: without ``count_include_pad`` such a window averages no element and gives
NaN, as ``reduce_mean`` over an empty axis does; the reference, constant folding and vmvx agree.
(It happens only on an empty spatial input: padding is smaller than the kernel.)
"""

from __future__ import annotations

import numpy as np
import pytest

import hal_core
from hal_core import ir


def _pool(include: bool) -> str:
    attr = ", count_include_pad = true" if include else ""
    return f"""func.func @main(%x: tensor<1x2x0x3xf32>) -> tensor<1x2x1x4xf32> {{
  %0 = avg_pool2d %x {{kernel = [2, 2], padding = [1, 1, 1, 1]{attr}}}
  return %0 : tensor<1x2x1x4xf32>
}}"""


@pytest.mark.parametrize("model", ["async", "inline"])
@pytest.mark.parametrize("include", [False, True], ids=["exclude-pad", "include-pad"])
def test_avg_pool_of_windows_holding_only_padding(model, include):
    src = _pool(include)
    x = np.zeros((1, 2, 0, 3), np.float32)
    want = np.full((1, 2, 1, 4), 0.0 if include else np.nan, np.float32)
    (ref,) = ir.evaluate(ir.parse(src).functions[0], x)
    np.testing.assert_array_equal(ref, want)
    module = hal_core.compile(src, target_backends=["vmvx"], execution_model=model)
    with hal_core.load_module(module, "local-sync") as m:
        np.testing.assert_array_equal(m.main(x), want)
