"""A driver whose memory the host cannot map (tests/drivers/devonly_driver.py): it passes the
CTS and runs compiled modules, the runtime moving data with queue_write / queue_read."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import hal_core
from hal_core.errors import UsageError
from hal_core.hal import MemoryType
from hal_core.ir import Builder
from hal_core.ir import ops as O

DRIVER = str(Path(__file__).with_name("devonly_driver.py"))


@pytest.fixture
def devonly(monkeypatch, clean_hal_env):
    monkeypatch.setenv("HAL_EXTERNAL_DRIVERS", DRIVER)
    from hal_core.registry import get_registry

    device = get_registry().create_device("devonly")
    yield device
    device.close()


def test_cts_passes_on_device_only_memory(tmp_path):
    _cts("devonly", tmp_path, skipped_feature="mapping")


def test_cts_passes_on_memory_that_cannot_wrap_host_arrays(tmp_path):
    _cts("nowrap", tmp_path, skipped_feature=None)


def _cts(driver, tmp_path, skipped_feature):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAL_")}
    env["HAL_EXTERNAL_DRIVERS"] = DRIVER
    env.pop("PYTEST_ADDOPTS", None)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           f"--hal-driver={driver}", "-rs"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    skipped = [line for line in proc.stdout.splitlines() if line.startswith("SKIPPED")]
    if skipped_feature is None:
        assert not skipped and " passed" in proc.stdout, proc.stdout[-2000:]
        return
    # Only the mapping tests are skipped, for the driver's stated reason.
    assert skipped and all(f"does not support '{skipped_feature}'" in line for line in skipped)
    assert "test_transfer" not in "\n".join(skipped)


def test_its_buffers_cannot_be_mapped(devonly):
    buf = devonly.allocator.allocate_buffer(16)
    assert not buf.memory_type & MemoryType.HOST_VISIBLE
    with pytest.raises(UsageError, match="not host visible"):
        buf.map()
    with pytest.raises(UsageError, match="cannot allocate memory type"):
        devonly.allocator.allocate_buffer(16, MemoryType.HOST_VISIBLE)


def _program():
    b = Builder()
    with b.function("main", [("x", (8, 16), "float32"), ("w", (16, 4), "float32")]) as f:
        x, w = f.args
        h = O.matmul(x, w) + np.arange(4, dtype=np.float32)  # a module constant
        f.ret(h.softmax(axis=1), O.sum(x * x, axis=1), x + 0.0)  # and a copy of an input
    return b.module()


def _reference(x, w):
    h = x @ w + np.arange(4, dtype=np.float32)
    e = np.exp(h - h.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True), (x * x).sum(axis=1), x


@pytest.mark.parametrize("model", ["async", "inline"])
@pytest.mark.parametrize("driver", ["devonly", "nowrap"])
def test_runs_compiled_vmvx_modules(devonly, model, driver):
    module = hal_core.compile(_program(), target_backends=["vmvx"], execution_model=model)
    assert module.constants  # the constant reaches device memory through queue_write
    rng = np.random.default_rng(0)
    with hal_core.load_module(module, device=driver) as m:
        for _ in range(3):  # device buffers are reused across calls
            x = rng.standard_normal((8, 16), dtype=np.float32)
            w = rng.standard_normal((16, 4), dtype=np.float32)
            got = m.main(x, w)
            for g, want in zip(got, _reference(x, w)):
                np.testing.assert_allclose(g, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("driver", ["devonly", "nowrap"])
def test_runs_by_name_and_keeps_results_apart(devonly, driver):
    b = Builder()
    with b.function("main", [("x", (512, 512), "float32")]) as f:
        (x,) = f.args
        f.ret(x + x, x * x)
    module = hal_core.compile(b.module(), target_backends=["vmvx"])
    x = np.full((512, 512), 3.0, np.float32)  # 1 MiB results: recycled memory
    with hal_core.load_module(module, device=driver) as m:
        first = m.main(x)
        second = m.main(x)
    np.testing.assert_array_equal(first[0], 6.0)
    np.testing.assert_array_equal(first[1], 9.0)
    np.testing.assert_array_equal(second[0], 6.0)
    np.testing.assert_array_equal(second[1], 9.0)


def test_a_failing_call_does_not_poison_the_next(devonly):
    b = Builder()
    with b.function("main", [("x", (4,), "float32")]) as f:
        f.ret(O.exp(f.args[0]))
    module = hal_core.compile(b.module(), target_backends=["vmvx"])
    with hal_core.load_module(module, device=devonly) as m:
        with pytest.raises(UsageError):
            m.main(np.ones(5, np.float32))
        np.testing.assert_allclose(m.main(np.zeros(4, np.float32)), 1.0)
