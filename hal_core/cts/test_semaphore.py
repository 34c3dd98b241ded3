"""CTS: timeline semaphores: signal, wait, timeouts, failure propagation, many waiters."""

from __future__ import annotations

import threading

import pytest

from hal_core.cts.executables import read_bytes

from hal_core.errors import HalRuntimeError, TimeoutExpiredError, UsageError
from hal_core.hal import CommandBufferMode, Fence

TIMEOUT = 10.0


def test_initial_value_and_signal(hal_device):
    sem = hal_device.create_semaphore(5)
    assert sem.query() == 5
    sem.signal(7)
    assert sem.query() == 7
    sem.wait(6, 0)
    with pytest.raises(UsageError, match="increase"):
        sem.signal(3)


def test_uint64_range(hal_device):
    sem = hal_device.create_semaphore((1 << 64) - 2)
    sem.signal((1 << 64) - 1)
    assert sem.query() == (1 << 64) - 1
    with pytest.raises(UsageError):
        hal_device.create_semaphore(-1)


def test_wait_times_out(hal_device):
    sem = hal_device.create_semaphore()
    with pytest.raises(TimeoutExpiredError, match="did not reach 1"):
        sem.wait(1, 0.01)
    with pytest.raises(TimeoutExpiredError):
        sem.wait(1, 0)


def test_signal_from_another_thread_wakes_waiters(hal_device):
    sem = hal_device.create_semaphore()
    results = []

    def waiter(value):
        sem.wait(value, TIMEOUT)
        results.append(value)

    threads = [threading.Thread(target=waiter, args=(v,)) for v in (1, 2, 2, 3)]
    for t in threads:
        t.start()
    sem.signal(2)
    sem.signal(3)
    for t in threads:
        t.join(TIMEOUT)
    assert sorted(results) == [1, 2, 2, 3]


def test_failure_reaches_every_waiter(hal_device):
    sem = hal_device.create_semaphore()
    error = HalRuntimeError("boom")
    seen = []
    started = threading.Barrier(4)

    def waiter():
        started.wait(TIMEOUT)
        try:
            sem.wait(10, TIMEOUT)
        except HalRuntimeError as e:
            seen.append(e)

    threads = [threading.Thread(target=waiter) for _ in range(3)]
    for t in threads:
        t.start()
    started.wait(TIMEOUT)
    sem.fail(error)
    for t in threads:
        t.join(TIMEOUT)
    assert seen == [error] * 3
    with pytest.raises(HalRuntimeError, match="boom"):
        sem.query()
    with pytest.raises(HalRuntimeError, match="boom"):
        sem.wait(0, 0)


def test_fence_waits_for_all_timepoints(hal_device):
    a, b = hal_device.create_semaphore(), hal_device.create_semaphore()
    fence = Fence([(a, 1), (b, 2)])
    a.signal(1)
    with pytest.raises(TimeoutExpiredError):
        fence.wait(0.01)
    b.signal(2)
    fence.wait(TIMEOUT)
    assert fence.is_reached()


def test_queue_waits_on_a_later_host_signal(hal_device):
    gate, done = hal_device.create_semaphore(), hal_device.create_semaphore()
    buf = hal_device.allocator.allocate_buffer(4)
    with hal_device.create_command_buffer() as cb:
        cb.fill(buf, 9)
    hal_device.queue_execute([(gate, 1)], [(done, 1)], [cb])
    with pytest.raises(TimeoutExpiredError):
        done.wait(1, 0.01)
    assert read_bytes(hal_device, buf) == bytes(4)
    gate.signal(1)
    done.wait(1, TIMEOUT)
    assert read_bytes(hal_device, buf) == b"\x09" * 4


def test_failed_wait_fails_the_signals(hal_device):
    gate, done = hal_device.create_semaphore(), hal_device.create_semaphore()
    hal_device.queue_execute([(gate, 1)], [(done, 1)], [])
    gate.fail(HalRuntimeError("upstream failed"))
    with pytest.raises(HalRuntimeError, match="upstream failed"):
        done.wait(1, TIMEOUT)
    after = hal_device.create_semaphore()
    hal_device.queue_execute([(gate, 1)], [(after, 1)], [])
    with pytest.raises(HalRuntimeError, match="upstream failed"):
        after.wait(1, TIMEOUT)


def test_failing_command_fails_the_signal_semaphores(hal_device):
    cb = hal_device.create_command_buffer(CommandBufferMode.REUSABLE, binding_capacity=1)
    with cb:
        cb.fill(0, b"\x01\x02")  # whole binding: alignment of its length is checked when run
    odd = hal_device.allocator.allocate_buffer(3)
    s1, s2 = hal_device.create_semaphore(), hal_device.create_semaphore()
    hal_device.queue_execute([], [(s1, 1), (s2, 1)], [cb], [[odd]])
    for sem in (s1, s2):
        with pytest.raises(HalRuntimeError, match="multiples of 2"):
            sem.wait(1, TIMEOUT)


def test_chain_submitted_in_reverse_order(hal_device):
    sem = hal_device.create_semaphore()
    buf = hal_device.allocator.allocate_buffer(3)
    for step in reversed(range(3)):
        with hal_device.create_command_buffer() as cb:
            cb.update(buf, bytes([step + 1]), offset=step)
        hal_device.queue_execute([(sem, step + 1)], [(sem, step + 2)], [cb])
    sem.signal(1)
    sem.wait(4, TIMEOUT)
    assert read_bytes(hal_device, buf) == b"\x01\x02\x03"


def test_unbounded_wait_sees_results_and_failures(hal_device):
    # The runtime waits without a timeout, and a driver may serve such a wait differently
    # (local-task runs the queued work on the waiting thread). A daemon thread keeps a driver
    # that never signals from hanging the suite.
    buf = hal_device.allocator.allocate_buffer(4)
    with hal_device.create_command_buffer() as good:
        good.fill(buf, 7)
    bad = hal_device.create_command_buffer(CommandBufferMode.REUSABLE, binding_capacity=1)
    with bad:
        bad.fill(0, b"\x01\x02")
    odd = hal_device.allocator.allocate_buffer(3)
    outcome = {}

    def host():
        ok, failed = hal_device.create_semaphore(), hal_device.create_semaphore()
        hal_device.queue_execute([], [(ok, 1)], [good])
        ok.wait(1)
        outcome["data"] = read_bytes(hal_device, buf)
        hal_device.queue_execute([], [(failed, 1)], [bad], [[odd]])
        try:
            failed.wait(1)
        except HalRuntimeError as e:
            outcome["error"] = str(e)

    t = threading.Thread(target=host, daemon=True)
    t.start()
    t.join(TIMEOUT)
    assert not t.is_alive(), "a wait without a timeout did not return"
    assert outcome["data"] == b"\x07" * 4
    assert "multiples of 2" in outcome["error"]
