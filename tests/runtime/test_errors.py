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


def test_memory_the_host_cannot_provide_is_a_hal_error(model):
    import dataclasses

    from runtime_modules import chain_module

    from hal_core.errors import HalError
    from hal_core.module.model import TensorType

    module = chain_module(model)
    copy_fill = module.functions[1]
    huge = TensorType((1 << 46,), "float32")  # 256 TiB: beyond a 47-bit address space
    module = dataclasses.replace(module, functions=(
        module.functions[0], dataclasses.replace(copy_fill, outputs=(copy_fill.outputs[0], huge))))
    with load_module(module, "local-sync") as m, \
            pytest.raises(HalRuntimeError, match="copy_fill result.*cannot allocate"):
        m.copy_fill(np.zeros(6, np.float32))
    arena = dataclasses.replace(module.functions[0], transient_size=1 << 48)
    with pytest.raises(HalError, match="allocat"):
        load_module(dataclasses.replace(module, functions=(arena,)), "local-sync")
