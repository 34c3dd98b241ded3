"""Regression tests: result memory of one call is never shared, and a call keeps nothing alive.

Issue 6: two same-size (>= 1 MiB) outputs of one call came back as one array; the inputs and
results of a call stayed alive after the caller dropped them (a vmvx binding cache and the
local-task worker's last task held them).
"""

from __future__ import annotations

import gc
import time
import weakref

import numpy as np
import pytest

import hal_core
from hal_core.runtime.memory import RECYCLE_BYTES, SPARE_BYTES, ResultMemory

N = 512


def _two_outputs(model: str) -> object:
    t = f"tensor<{N}x{N}xf32>"
    return hal_core.compile(f"""func.func @main(%x: {t}) -> ({t}, {t}) {{
  %0 = add %x, %x : ({t}, {t}) -> {t}
  %1 = mul %x, %x : ({t}, {t}) -> {t}
  return %0, %1 : {t}, {t}
}}""", target_backends=["vmvx"], execution_model=model)


@pytest.mark.parametrize("model", ["async", "inline"])
def test_same_size_large_outputs_of_one_call_are_distinct(device_name, model):
    x = np.full((N, N), 3, np.float32)
    with hal_core.load_module(_two_outputs(model), device_name) as m:
        for _ in range(3):  # the later calls take their memory from the spares
            a, b = m.main(x)
            assert a.ctypes.data != b.ctypes.data
            np.testing.assert_array_equal(a, 6)
            np.testing.assert_array_equal(b, 9)
            del a, b


def test_take_all_never_hands_out_one_spare_twice():
    memory = ResultMemory()
    first = memory.take_all([RECYCLE_BYTES, RECYCLE_BYTES])
    addresses = {a.ctypes.data for a in first}
    del first
    again = memory.take_all([RECYCLE_BYTES, RECYCLE_BYTES])
    assert len({a.ctypes.data for a in again}) == 2
    assert {a.ctypes.data for a in again} == addresses  # both came back from the spares


def test_spare_memory_is_bounded():
    memory = ResultMemory()
    big = SPARE_BYTES // 2 + 64
    first = memory.take(big)
    second = memory.take(big, (first,))  # does not fit beside the first: not kept
    address = second.ctypes.data
    del first, second
    assert sum(len(v) for v in memory._spares.values()) == 1
    assert memory._kept <= SPARE_BYTES
    assert address != 0


def _gone(ref: weakref.ref, seconds: float = 2.0) -> bool:
    # A local-task worker may still be returning from the call's last tile.
    deadline = time.monotonic() + seconds
    while True:
        gc.collect()
        if ref() is None:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)


@pytest.mark.parametrize("model", ["async", "inline"])
def test_inputs_and_results_are_freed_once_the_caller_drops_them(device_name, model):
    n = 1 << 20
    t = f"tensor<{n}xf32>"
    module = hal_core.compile(f"""func.func @main(%x: {t}) -> {t} {{
  %0 = add %x, %x : ({t}, {t}) -> {t}
  return %0 : {t}
}}""", target_backends=["vmvx"], execution_model=model)
    with hal_core.load_module(module, device_name) as m:
        for _ in range(2):
            x = np.ones(n, np.float32)
            y = m.main(x)
            np.testing.assert_array_equal(y, 2)
            x_ref = weakref.ref(x)
            del x, y
            assert _gone(x_ref), "the call kept its input alive"
        # A result too large to keep as a spare goes back to the system when dropped.
        big = SPARE_BYTES // 4 + 16  # elements: SPARE_BYTES + 64 bytes of f32
        tb = f"tensor<{big}xf32>"
        module2 = hal_core.compile(f"""func.func @main(%x: {tb}) -> {tb} {{
  %0 = add %x, %x : ({tb}, {tb}) -> {tb}
  return %0 : {tb}
}}""", target_backends=["vmvx"], execution_model=model)
    with hal_core.load_module(module2, device_name) as m:
        y = m.main(np.ones(big, np.float32))
        owner = weakref.ref(y.base)
        del y
        assert _gone(owner), "the call kept its result alive"
