"""What the local drivers add to the CTS: URIs, properties, dispatch tiling, errors, close."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import threading
from typing import ClassVar

import numpy as np
import pytest
from hal_core.hal.local import cpu
from hal_local.sync import SyncDriver
from hal_local.task import TaskDriver
from hal_testing import FakeRegistry, PythonExecutable, PythonLoader

from hal_core.errors import HalRuntimeError, UsageError
from hal_core.hal import CommandBufferMode, EntryPoint

TIMEOUT = 10.0
IDS = [EntryPoint("ids", binding_count=1, constant_count=1)]


def submit(device, cbs, tables=None, waits=()):
    sem = device.create_semaphore()
    device.queue_execute(list(waits), [(sem, 1)], cbs, tables)
    return sem


def test_task_worker_parameter():
    driver = TaskDriver(FakeRegistry())
    dev = driver.create_device("local-task://?workers=4")
    try:
        assert dev.id == "local-task://?workers=4" and dev.properties()["workers"] == 4
        assert len(dev.pool._threads) == 4
    finally:
        dev.close()
    for bad in ("0", "x", "-1", ""):
        with pytest.raises(UsageError, match="workers must be an int >= 1"):
            driver.create_device(f"local-task://?workers={bad}")
    with pytest.raises(UsageError, match="accepts: workers"):
        driver.create_device("local-task://?threads=2")
    with pytest.raises(UsageError, match="one device"):
        driver.create_device("local-task://gpu7")


def test_sync_accepts_no_parameters():
    with pytest.raises(UsageError, match="accepts: none"):
        SyncDriver(FakeRegistry()).create_device("local-sync://?workers=2")


def test_drivers_need_a_registry():
    with pytest.raises(UsageError, match="registry"):
        SyncDriver(None)


def test_properties_and_features(device):
    props = device.properties()
    json.dumps(props)
    assert props["architecture"] == cpu.architecture()
    assert props["workers"] == device.workers
    assert device.query_formats() == ("test-python",)
    assert device.query_features() == cpu.cpu_features()


def test_cpu_features_come_from_proc_cpuinfo():
    with open("/proc/cpuinfo") as f:
        text = f.read()
    if "flags" in text:
        assert "fpu" in cpu.cpu_features() or cpu.architecture() != "x86_64"


def test_sync_dispatch_is_one_run_call_over_the_whole_range(registry):
    dev = SyncDriver(registry).create_device()
    exe = dev.executable_cache.prepare("test-python", b"ids", IDS)
    out = dev.allocator.allocate_buffer(4 * 24)
    with dev.create_command_buffer() as cb:
        cb.dispatch(exe, 0, (4, 3, 2), [out], [100])
    submit(dev, [cb]).wait(1, TIMEOUT)
    assert exe.calls == [(threading.current_thread().name, 0, 0, 24)]
    np.testing.assert_array_equal(out.map().view(np.uint32), np.arange(24) + 100)


@pytest.mark.parametrize("workers, total", [(3, 10), (4, 4), (4, 2), (2, 1), (3, 1000)])
def test_task_dispatch_tiles_are_contiguous_and_one_per_worker(workers, total):
    dev = TaskDriver(FakeRegistry()).create_device(f"local-task://?workers={workers}")
    try:
        exe = dev.executable_cache.prepare("test-python", b"ids", IDS)
        out = dev.allocator.allocate_buffer(4 * total)
        with dev.create_command_buffer() as cb:
            cb.dispatch(exe, 0, (total, 1, 1), [out], [0])
        submit(dev, [cb]).wait(1, TIMEOUT)
        tiles = sorted((first, last) for _, _, first, last in exe.calls)
        assert len(tiles) == min(workers, total)
        assert tiles[0][0] == 0 and tiles[-1][1] == total
        assert all(a[1] == b[0] for a, b in itertools.pairwise(tiles))
        sizes = [last - first for first, last in tiles]
        assert max(sizes) - min(sizes) <= 1
        assert all(name.startswith("local-task-worker") for name, *_ in exe.calls)
        np.testing.assert_array_equal(out.map().view(np.uint32), np.arange(total))
    finally:
        dev.close()


def test_reusable_dispatch_with_different_bindings(device):
    exe = device.executable_cache.prepare(
        "test-python", b"add", [EntryPoint("add", binding_count=3)]
    )
    cb = device.create_command_buffer(CommandBufferMode.REUSABLE, binding_capacity=3)
    with cb:
        cb.dispatch(exe, 0, (8, 1, 1), [0, 1, 2])
    alloc = device.allocator
    for k in range(3):
        a = alloc.import_host(np.arange(8, dtype=np.float32) * k)
        b = alloc.import_host(np.full(8, 0.5, dtype=np.float32))
        out = alloc.allocate_buffer(32)
        submit(device, [cb], [[a, b, out]]).wait(1, TIMEOUT)
        np.testing.assert_array_equal(out.map().view(np.float32), np.arange(8) * k + 0.5)


@pytest.mark.parametrize(
    "kernel, error",
    [
        (b"hal_fail", "kernel failed on workgroups"),
        (
            b"py_fail",
            ("command 2 \\(dispatch of test-python entry point 'k'\\) failed: ZeroDivisionError"),
        ),
    ],
)
def test_failing_dispatch_fails_signals_and_later_work(device, kernel, error):
    exe = device.executable_cache.prepare("test-python", kernel, [EntryPoint("k")])
    with device.create_command_buffer() as cb:
        cb.execution_barrier()
        cb.fill(device.allocator.allocate_buffer(4), 1)
        cb.dispatch(exe, 0, (16, 1, 1))
    sem = submit(device, [cb])
    with pytest.raises(HalRuntimeError, match=error) as info:
        sem.wait(1, TIMEOUT)
    if kernel == b"py_fail":
        assert isinstance(info.value.__cause__, ZeroDivisionError)
    later = submit(device, [], waits=[(sem, 1)])
    with pytest.raises(HalRuntimeError, match=error):
        later.wait(1, TIMEOUT)


def test_sync_runs_parked_work_on_the_signalling_thread(registry):
    dev = SyncDriver(registry).create_device()
    exe = dev.executable_cache.prepare("test-python", b"ids", IDS)
    out = dev.allocator.allocate_buffer(4)
    with dev.create_command_buffer() as cb:
        cb.dispatch(exe, 0, (1, 1, 1), [out], [5])
    gate = dev.create_semaphore()
    done = submit(dev, [cb], waits=[(gate, 1)])
    assert exe.calls == []
    t = threading.Thread(target=gate.signal, args=(1,), name="signaller")
    t.start()
    t.join(TIMEOUT)
    done.wait(1, TIMEOUT)
    assert exe.calls == [("signaller", 0, 0, 1)]


def test_close_fails_work_that_can_never_start(device):
    gate = device.create_semaphore()
    done = submit(device, [], waits=[(gate, 1)])
    device.close()
    with pytest.raises(HalRuntimeError, match="closed while it waited"):
        done.wait(1, TIMEOUT)
    gate.signal(1)  # the parked submission is gone; nothing runs, nothing raises


def test_submission_racing_close_fails_instead_of_parking_forever(device):
    # queue_execute checked the device was open, then close() ran before it parked.
    gate, done = device.create_semaphore(), device.create_semaphore()
    device.close()
    device.submit(((gate, 1),), ((done, 1),), None, "queue_execute")
    with pytest.raises(HalRuntimeError, match="closed while it waited"):
        done.query()
    gate.signal(1)


def test_task_launch_after_close_fails_instead_of_queueing_behind_shutdown():
    # A parked submission released by a host signal racing close(): the pool is gone, so the
    # submission must fail its signals rather than sit in a queue no worker reads.
    dev = TaskDriver(FakeRegistry()).create_device("local-task://?workers=2")
    done = dev.create_semaphore()
    dev.close()
    dev.submit((), ((done, 1),), None, "queue_execute")
    with pytest.raises(HalRuntimeError, match="closed while it was being submitted"):
        done.query()


def test_task_host_wait_runs_queued_work_once_on_the_waiting_thread():
    dev = TaskDriver(FakeRegistry()).create_device("local-task://?workers=1")
    release = threading.Event()
    safety = threading.Timer(TIMEOUT, release.set)  # never leave the worker blocked
    safety.start()
    try:
        exe = dev.executable_cache.prepare("test-python", b"ids,py_fail", IDS * 2)
        out = dev.allocator.allocate_buffer(4)
        busy = dev.create_semaphore()
        dev.submit((), ((busy, 1),), release.wait, "blocker")  # occupies the only worker
        with dev.create_command_buffer() as cb:
            cb.dispatch(exe, 0, (1, 1, 1), [out], [7])
        done = submit(dev, [cb])
        done.wait(1)  # no timeout: the host runs the queued submission itself
        assert exe.calls == [(threading.current_thread().name, 0, 0, 1)]
        assert out.map().view(np.uint32)[0] == 7
        with dev.create_command_buffer() as cb:
            cb.dispatch(exe, 1, (1, 1, 1), [out], [0])
        with pytest.raises(HalRuntimeError, match="ZeroDivisionError"):
            submit(dev, [cb]).wait(1)
        release.set()
        dev.wait_idle(TIMEOUT)  # the worker found both claimed and skipped them
        assert [c[1] for c in exe.calls] == [0, 1]
    finally:
        release.set()
        safety.cancel()
        dev.close()


def test_many_concurrent_submissions_with_dispatches_do_not_deadlock():
    dev = TaskDriver(FakeRegistry()).create_device("local-task://?workers=2")
    try:
        exe = dev.executable_cache.prepare("test-python", b"ids", IDS)
        sems, outs = [], []
        for i in range(40):
            out = dev.allocator.allocate_buffer(4 * 64)
            with dev.create_command_buffer() as cb:
                cb.dispatch(exe, 0, (64, 1, 1), [out], [i])
                cb.dispatch(exe, 0, (64, 1, 1), [out], [i])
            sems.append(submit(dev, [cb]))
            outs.append(out)
        for i, (sem, out) in enumerate(zip(sems, outs)):
            sem.wait(1, TIMEOUT)
            np.testing.assert_array_equal(out.map().view(np.uint32), np.arange(64) + i)
        dev.wait_idle(TIMEOUT)
    finally:
        dev.close()
    assert not any(t.is_alive() for t in dev.pool._threads)


def test_unclosed_task_device_does_not_hang_interpreter_exit():
    code = (
        "from hal_testing import FakeRegistry\n"
        "from hal_local.task import TaskDriver\n"
        "d = TaskDriver(FakeRegistry()).create_device('local-task://?workers=2')\n"
        "s = d.create_semaphore()\n"
        "d.queue_execute([(s, 1)], [(s, 2)], [])\n"
    )
    import os

    env = dict(os.environ, PYTHONPATH=os.path.dirname(__file__))
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        timeout=60,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("fail", [False, True])
def test_long_parked_chains_neither_recurse_nor_hang(device, fail):
    sem = device.create_semaphore()
    n = 3000  # far deeper than the recursion limit if each release nested a frame
    for i in reversed(range(n)):
        device.queue_execute([(sem, i + 1)], [(sem, i + 2)], [])
    if fail:
        sem.fail(HalRuntimeError("first link failed"))
        with pytest.raises(HalRuntimeError, match="first link failed"):
            sem.wait(n + 1, TIMEOUT)
    else:
        sem.signal(1)
        sem.wait(n + 1, TIMEOUT)
        assert sem.query() == n + 1


def test_long_chain_of_distinct_semaphores_fails_through(device):
    sems = [device.create_semaphore() for _ in range(2000)]
    for a, b in itertools.pairwise(sems):
        device.queue_execute([(a, 1)], [(b, 1)], [])
    sems[0].fail(HalRuntimeError("root cause"))
    with pytest.raises(HalRuntimeError, match="root cause"):
        sems[-1].wait(1, TIMEOUT)


class _ParallelExecutable(PythonExecutable):
    """Spreads dispatches itself (the optional run_parallel of the local ABI) with a
    per-device helper kept in the worker pool's resources."""

    def run_parallel(self, entry, workgroup_count, total, bindings, constants, workers):
        helper = workers.resource("test-helper", _Helper)
        if helper is None:  # the device is closing
            self.run(entry, workgroup_count, 0, total, bindings, constants)
            return
        helper.dispatches += 1
        half = total // 2
        # A real executable would run these on its helper threads.
        self.run(entry, workgroup_count, half, total, bindings, constants)
        self.run(entry, workgroup_count, 0, half, bindings, constants)


class _Helper:
    made: ClassVar[list[_Helper]] = []

    def __init__(self, size: int) -> None:
        self.size, self.dispatches, self.closed = size, 0, False
        _Helper.made.append(self)

    def close(self) -> None:
        self.closed = True


class _ParallelLoader(PythonLoader):
    def load(self, payload, entry_points):
        exe = super().load(payload, entry_points)
        return _ParallelExecutable(exe.kernels, exe.entry_points)


@pytest.mark.parametrize("workers, total, parallel", [(3, 10, True), (2, 1, False),
                                                      (1, 10, False)])
def test_task_hands_dispatches_to_run_parallel_with_per_device_resources(workers, total,
                                                                         parallel):
    _Helper.made.clear()
    dev = TaskDriver(FakeRegistry(_ParallelLoader())).create_device(
        f"local-task://?workers={workers}")
    try:
        exe = dev.executable_cache.prepare("test-python", b"ids", IDS)
        out = dev.allocator.allocate_buffer(4 * total)
        for i in range(3):
            with dev.create_command_buffer() as cb:
                cb.dispatch(exe, 0, (total, 1, 1), [out], [i])
            submit(dev, [cb]).wait(1, TIMEOUT)
            np.testing.assert_array_equal(out.map().view(np.uint32), np.arange(total) + i)
        tiles = [(first, last) for _, _, first, last in exe.calls]
        if parallel:   # one helper made for the device, with its size, used by each dispatch
            assert [(h.size, h.dispatches) for h in _Helper.made] == [(workers, 3)]
            assert tiles == [(total // 2, total), (0, total // 2)] * 3
        else:          # one workgroup or one worker: a single run call, no helper
            assert _Helper.made == [] and tiles == [(0, total)] * 3
    finally:
        dev.close()
    assert all(h.closed for h in _Helper.made)
    assert dev.pool.resource("test-helper", _Helper) is None   # none made after close
