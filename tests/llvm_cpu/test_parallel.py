"""The native worker pool (hal_llvm_cpu.parallel) and llvm-cpu's run_parallel on local-task.

Most tests drive the pool with entry points that are ctypes callbacks: they record which
workgroups each call covered and on which thread, so chunk coverage is checked exactly.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import threading
import time
from collections import Counter

import numpy as np
import pytest
from hal_llvm_cpu.loader import _ENTRY, LlvmExecutable
from hal_llvm_cpu.parallel import NativePool

import hal_core
from hal_core import ir
from hal_core.errors import HalRuntimeError
from hal_core.hal import EntryPoint
from hal_core.hal.local.worker_pool import WorkerPool

TIMEOUT = 10.0


class Recorder:
    """A native-callable entry point that records ``(thread, first, end)`` per call."""

    def __init__(self, fail_at: int | None = None, rc: int = 7,
                 hold: threading.Event | None = None) -> None:
        self.calls: list[tuple[str, int, int]] = []
        self.lock = threading.Lock()
        self.fail_at, self.rc, self.hold = fail_at, rc, hold
        self.fn = _ENTRY(self._call)
        self.address = ctypes.cast(self.fn, ctypes.c_void_p).value

    def _call(self, bindings, constants, wgc, first, end) -> int:
        with self.lock:
            self.calls.append((threading.current_thread().name, first, end))
        if self.hold is not None:
            self.hold.wait(TIMEOUT)
        if self.fail_at is not None and first <= self.fail_at < end:
            return self.rc
        return 0

    def covered(self) -> Counter:
        return Counter(w for _, first, end in self.calls for w in range(first, end))


def run_pool(pool: NativePool, rec: Recorder, first: int, end: int, chunk: int):
    """``pool.run`` over ``[first, end)``; fails (rather than hangs) if it never returns."""
    wgc = (ctypes.c_uint32 * 3)(end, 1, 1)
    bindings = (ctypes.c_void_p * 1)(0)
    return in_thread(pool.run, rec.address, bindings, None, wgc, first, end, chunk)


def in_thread(fn, *args):
    """``fn(*args)`` on a daemon thread, failing after TIMEOUT: a lost chunk means a submitter
    waiting forever, which must fail the test, not hang the suite."""
    out: list = []
    t = threading.Thread(target=lambda: out.append(fn(*args)), daemon=True)
    t.start()
    t.join(TIMEOUT)
    assert not t.is_alive(), f"{fn.__qualname__} did not return in {TIMEOUT} s"
    return out[0] if out else None


@pytest.fixture
def pool():
    p = NativePool(3)
    yield p
    p.close()


@pytest.mark.parametrize("first, end, chunk", [(0, 1, 1), (0, 100, 1), (0, 100, 7),
                                               (5, 1000, 16), (3, 4, 100), (0, 64, 64)])
def test_every_workgroup_runs_exactly_once_in_chunks(pool, first, end, chunk):
    for _ in range(3):  # and again: each job resets the pool's counters
        rec = Recorder()
        assert run_pool(pool, rec, first, end, chunk) == (0, first, end)
        assert rec.covered() == Counter(range(first, end))
        starts = sorted(f for _, f, _ in rec.calls)
        assert starts == list(range(first, end, chunk))
        assert all(e - f == min(chunk, end - f) for _, f, e in rec.calls)


def test_helpers_take_chunks_while_the_submitter_is_busy(pool):
    # The first call blocks until a call comes from another thread: with one thread working
    # the job would never finish, so the pool must hand chunks to a second one.
    other_thread = threading.Event()
    first_thread: list[str] = []
    rec = Recorder()

    def call(bindings, constants, wgc, first, end):
        rec._call(bindings, constants, wgc, first, end)
        me = threading.current_thread().name
        with rec.lock:
            if not first_thread:
                first_thread.append(me)
                mine = True
            else:
                mine = False
                if me != first_thread[0]:
                    other_thread.set()
        if mine:
            other_thread.wait(TIMEOUT)
        return 0

    rec.fn = _ENTRY(call)
    rec.address = ctypes.cast(rec.fn, ctypes.c_void_p).value
    helped = pool.helped
    assert run_pool(pool, rec, 0, 32, 1)[0] == 0
    assert other_thread.is_set(), "no second thread claimed a chunk"
    helper_calls = sum(name.startswith("hal-pool-native") for name, _, _ in rec.calls)
    assert pool.helped - helped == helper_calls > 0
    assert rec.covered() == Counter(range(32))
    assert any(name.startswith("hal-pool-native") for name, _, _ in rec.calls)


def test_first_failing_chunk_is_reported_and_all_chunks_still_run(pool):
    rec = Recorder(fail_at=37, rc=5)
    rc, first, end = run_pool(pool, rec, 0, 100, 10)
    assert (rc, first, end) == (5, 30, 40)
    assert rec.covered() == Counter(range(100))
    rec = Recorder()
    assert run_pool(pool, rec, 0, 100, 10) == (0, 0, 100)   # the next job starts clean


def test_a_second_caller_runs_alone_instead_of_waiting_for_a_busy_pool(pool):
    hold = threading.Event()
    busy = Recorder(hold=hold)
    t = threading.Thread(target=run_pool, args=(pool, busy, 0, 4, 1))
    t.start()
    try:
        deadline = time.monotonic() + TIMEOUT
        while not busy.calls and time.monotonic() < deadline:
            time.sleep(0.001)
        second = Recorder()
        assert run_pool(pool, second, 0, 50, 5) == (0, 0, 50)
        # One call over the whole range, on the caller's thread: nothing waited on the pool.
        assert [(f, e) for _, f, e in second.calls] == [(0, 50)]
        assert not second.calls[0][0].startswith("hal-pool-native")
    finally:
        hold.set()
        t.join(TIMEOUT)
    assert busy.covered() == Counter(range(4))


def test_concurrent_callers_all_get_every_workgroup(pool):
    recs = [Recorder() for _ in range(6)]
    results = [None] * 6

    def go(i):
        for _ in range(20):
            results[i] = run_pool(pool, recs[i], 0, 40, 3)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    assert all(r == (0, 0, 40) for r in results)
    for rec in recs:
        assert rec.covered() == Counter({w: 20 for w in range(40)})


def test_close_stops_the_helpers_and_later_runs_go_alone():
    before = threading.active_count()
    p = NativePool(4)
    assert threading.active_count() == before + 3
    rec = Recorder()
    assert run_pool(p, rec, 0, 10, 1)[0] == 0
    p.close()
    assert threading.active_count() == before
    p.close()   # twice is fine
    rec = Recorder()
    assert run_pool(p, rec, 0, 10, 1) == (0, 0, 10)
    assert [(f, e) for _, f, e in rec.calls] == [(0, 10)]


def test_idle_helpers_fall_asleep_and_wake_for_the_next_job():
    p = NativePool(2, spin_us=1.0)   # asleep in the futex almost at once
    try:
        for _ in range(5):
            time.sleep(0.01)
            rec = Recorder()
            assert run_pool(p, rec, 0, 20, 1)[0] == 0
            assert rec.covered() == Counter(range(20))
    finally:
        p.close()


# -- llvm-cpu's run_parallel, as local-task calls it -----------------------------------------

def _executable(rec: Recorder) -> LlvmExecutable:
    return LlvmExecutable("llvm-object-x86_64", (EntryPoint("boom", binding_count=1),),
                          [rec.fn], None, [(0,)])


def test_run_parallel_error_names_the_entry_point_and_workgroups():
    pool = WorkerPool(2, "test")
    try:
        exe = _executable(Recorder(fail_at=40, rc=3))
        with pytest.raises(HalRuntimeError, match=r"'boom' returned 3 for workgroups \[\d+, \d+\)"):
            exe.run_parallel(0, (64, 1, 1), 64, (ctypes.c_void_p * 1)(0), None, pool)
    finally:
        pool.shutdown()


def test_run_parallel_uses_one_native_pool_per_device_closed_with_it():
    before = threading.active_count()
    pool = WorkerPool(3, "test")
    rec = Recorder()
    exe = _executable(rec)
    exe.run_parallel(0, (64, 1, 1), 64, (ctypes.c_void_p * 1)(0), None, pool)
    exe.run_parallel(0, (64, 1, 1), 64, (ctypes.c_void_p * 1)(0), None, pool)
    assert threading.active_count() == before + 3 + 2   # 3 Python workers, 2 native helpers
    assert rec.covered() == Counter({w: 2 for w in range(64)})
    pool.shutdown()
    assert threading.active_count() == before
    # A dispatch racing the device's close runs on the calling thread.
    exe.run_parallel(0, (8, 1, 1), 8, (ctypes.c_void_p * 1)(0), None, pool)
    assert rec.calls[-1] == (threading.current_thread().name, 0, 8)


def _conv_module():
    g = np.random.default_rng(1)
    w = g.random((16, 8, 3, 3), np.float32) - 0.5
    bias = g.random(16, np.float32)
    b = ir.Builder()
    with b.function("main", [("x", (1, 8, 30, 30), "f32")]) as f:
        y = ir.ops.conv2d(f.args[0], w, bias, strides=1, padding=1)
        f.ret(y)
    return hal_core.compile(b.module(), target_backends=["llvm-cpu"])


@pytest.fixture(scope="module")
def conv_module():
    return _conv_module()


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_local_task_matches_local_sync_from_concurrent_threads(conv_module, workers):
    before = threading.active_count()
    sync = hal_core.load_module(conv_module, device="local-sync")
    task = hal_core.load_module(conv_module, device=f"local-task://?workers={workers}")
    g = np.random.default_rng(2)
    xs = [g.random((1, 8, 30, 30), np.float32) for _ in range(4)]
    want = [sync.main(x) for x in xs]
    errors: list[BaseException] = []

    def go(i):
        try:
            for _ in range(10):
                np.testing.assert_array_equal(task.main(xs[i]), want[i])
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[0]
    task.device.close()
    sync.device.close()
    assert threading.active_count() == before


def test_unclosed_device_with_native_helpers_does_not_hang_interpreter_exit():
    code = (
        "import numpy as np, hal_core\n"
        "from hal_core import ir\n"
        "b = ir.Builder()\n"
        "with b.function('main', [('x', (256, 256), 'f32')]) as f:\n"
        "    f.ret(ir.ops.matmul(f.args[0], f.args[0]))\n"
        "m = hal_core.load_module(hal_core.compile(b.module(), target_backends=['llvm-cpu']),"
        " device='local-task://?workers=2')\n"
        "x = np.ones((256, 256), np.float32)\n"
        "assert (m.main(x) == 256).all()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], timeout=120, capture_output=True,
                          text=True, check=False, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr
