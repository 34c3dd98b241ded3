from __future__ import annotations

import pytest

from hal_core.errors import HalRuntimeError, TimeoutExpiredError, UsageError
from hal_core.hal.semaphore import Semaphore, wrap_failure


def test_on_reached_runs_now_or_on_signal():
    sem = Semaphore(1)
    seen = []
    sem.on_reached(1, seen.append)
    assert seen == [None]
    sem.on_reached(3, lambda e: seen.append(("three", e)))
    sem.on_reached(2, lambda e: seen.append(("two", e)))
    sem.signal(2)
    assert seen == [None, ("two", None)]
    sem.signal(5)
    assert seen[-1] == ("three", None)


def test_on_reached_gets_the_failure():
    sem = Semaphore()
    seen = []
    sem.on_reached(1, seen.append)
    err = HalRuntimeError("x")
    sem.fail(err)
    sem.on_reached(1, seen.append)
    assert seen == [err, err]


def test_fail_is_sticky_and_later_signals_are_dropped():
    sem = Semaphore()
    first = HalRuntimeError("first")
    sem.fail(first)
    sem.fail(HalRuntimeError("second"))
    sem.signal(4)
    assert sem.failure is first
    with pytest.raises(HalRuntimeError, match="first"):
        sem.wait(0)


@pytest.mark.parametrize("value", [-1, 1 << 64, 1.0, True, "2"])
def test_bad_values(value):
    with pytest.raises(UsageError, match="2\\*\\*64"):
        Semaphore(value)


def test_signal_out_of_range_and_fail_non_exception():
    sem = Semaphore()
    with pytest.raises(UsageError):
        sem.signal(1 << 64)
    with pytest.raises(UsageError, match="exception"):
        sem.fail("oops")


def test_timeout_message_names_the_value():
    sem = Semaphore(2, label="s")
    with pytest.raises(TimeoutExpiredError, match="s did not reach 3 .*current value 2"):
        sem.wait(3, 0.001)


def test_wrap_failure_keeps_hal_errors_and_chains_others():
    err = HalRuntimeError("orig")
    assert wrap_failure(err, "x") is err
    inner = ValueError("bad")
    wrapped = wrap_failure(inner, "dispatch")
    assert isinstance(wrapped, HalRuntimeError) and wrapped.__cause__ is inner
    assert "dispatch failed: ValueError: bad" in str(wrapped)


@pytest.mark.parametrize("value", [1.0, True, "2"])
def test_signal_checks_the_type(value):
    with pytest.raises(UsageError, match="2\\*\\*64"):
        Semaphore().signal(value)


def test_a_raising_callback_does_not_starve_the_others():
    sem = Semaphore()
    seen = []

    def bad(error):
        raise RuntimeError("callback bug")

    sem.on_reached(1, bad)
    sem.on_reached(1, seen.append)
    sem.signal(1)
    assert seen == [None]


def test_unbounded_wait_runs_offered_work_that_reaches_the_value():
    sem = Semaphore()
    ran = []
    sem.offer(1, lambda: ran.append("low"))  # replaced by the next offer
    sem.offer(2, lambda: (ran.append("work"), sem.signal(2)))
    with pytest.raises(TimeoutExpiredError):
        sem.wait(2, timeout=0)  # a bounded wait never runs work
    assert ran == []
    sem.wait(2)
    assert ran == ["work"] and sem.query() == 2


@pytest.mark.parametrize("value", ["one", None])
def test_wait_on_a_non_number_is_a_usage_error(value):
    with pytest.raises(UsageError, match="wait value must be an int"):
        Semaphore().wait(value, timeout=0)
