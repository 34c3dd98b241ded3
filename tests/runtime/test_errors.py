"""Execution failures surface as HalRuntimeError chained to the original cause."""

from __future__ import annotations

import numpy as np
import pytest
from hal_vmvx.loader import VmvxExecutable
from runtime_modules import add_module

from hal_core.errors import HalRuntimeError
from hal_core.runtime import load_module


@pytest.fixture
def failing_kernels(monkeypatch):
    """vmvx kernels that raise ValueError while ``state['fail']`` is true."""
    state = {"fail": True}
    original = VmvxExecutable.run

    def run(self, *args):
        if state["fail"]:
            raise ValueError("boom from the kernel")
        return original(self, *args)

    monkeypatch.setattr(VmvxExecutable, "run", run)
    return state


def test_kernel_failure_is_a_runtime_error_with_the_cause(failing_kernels, device_name, model):
    a = np.ones(4, np.float32)
    with load_module(add_module(model=model), device_name) as m:
        with pytest.raises(HalRuntimeError) as info:
            m.main(a, a)
        message = str(info.value)
        assert "add.main" in message and "boom from the kernel" in message
        assert isinstance(info.value.__cause__, ValueError)
        # The function recovers: a later call that succeeds returns correct results.
        failing_kernels["fail"] = False
        np.testing.assert_array_equal(m.main(a, a), 2)
        np.testing.assert_array_equal(m.main(a, 3 * a), 4)
