from __future__ import annotations

import pytest

from hal_core.errors import HalRuntimeError, TimeoutExpiredError, UsageError
from hal_core.hal import Fence, Semaphore
from hal_core.hal.fence import as_timepoints


def test_insert_keeps_the_larger_value():
    a, b = Semaphore(), Semaphore()
    fence = Fence.at(a, 1)
    fence.insert(a, 3)
    fence.insert(a, 2)
    fence.insert(b, 1)
    assert list(fence) == [(a, 3), (b, 1)] and len(fence) == 2


def test_signal_wait_fail():
    a, b = Semaphore(), Semaphore()
    fence = Fence([(a, 1), (b, 1)])
    with pytest.raises(TimeoutExpiredError):
        fence.wait(0.001)
    fence.signal()
    fence.wait(0)
    other = Fence([(Semaphore(), 1)])
    other.fail(HalRuntimeError("f"))
    with pytest.raises(HalRuntimeError, match="f"):
        other.is_reached()


@pytest.mark.parametrize("bad", [[(1, 2)], [Semaphore()], [(Semaphore(), "1")], 5])
def test_malformed_timepoints(bad):
    with pytest.raises(UsageError, match="(?i)semaphore"):
        as_timepoints(bad, "wait")


def test_a_single_pair_asks_to_be_wrapped():
    with pytest.raises(UsageError, match="wrap it in a list"):
        as_timepoints((Semaphore(), 1), "signal")


@pytest.mark.parametrize("value", [-1, 1 << 64, True])
def test_timepoint_values_outside_the_semaphore_range_are_refused(value):
    sem = Semaphore()
    with pytest.raises(UsageError, match=r"fence timepoint value must be an int in \[0, 2\*\*64\)"):
        Fence([(sem, value)])
    with pytest.raises(UsageError, match="fence timepoint value"):
        Fence().insert(sem, value)
    with pytest.raises(UsageError, match="fence timepoint value"):
        as_timepoints([(sem, value)], "wait")
