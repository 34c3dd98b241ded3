"""The vmvx interpreter's per-run state: scratch reuse across runs and threads."""

from __future__ import annotations

import threading

import numpy as np
from harness import compile_one, ident, operand

from hal_core.compiler import kernel_ir as K


def _axpy_kernel(n: int) -> K.GenericKernel:
    f = "float32"
    body = (K.ScalarOp("mul", (K.Input(1), K.Const(2.0, f)), f),   # into scratch
            K.ScalarOp("add", (K.Input(0), K.Result(0)), f))
    return K.GenericKernel("axpy", (n,), ("parallel",),
                           (ident(operand(0, (n,), f)), ident(operand(1, (n,), f))),
                           (ident(operand(2, (n,), f)),), body, (K.Result(1),))


def _bufs(a, b, n):
    return [a.view(np.uint8), b.view(np.uint8), np.zeros(n * 4, np.uint8)]


def test_small_scratch_is_reused_by_the_next_run_on_a_thread():
    _, exe = compile_one(_axpy_kernel(100))
    kern = exe._kernels[0]
    rng = np.random.default_rng(0)
    first = None
    for _ in range(3):  # fresh inputs each run: reused scratch must not leak old values
        a, b = rng.random(100, np.float32), rng.random(100, np.float32)
        bufs = _bufs(a, b, 100)
        exe.run(0, (1, 1, 1), 0, 1, bufs, ())
        np.testing.assert_array_equal(bufs[2].view(np.float32), a + b * 2)
        arrays = [arr for _, arr, _ in kern.scratch_for(100)]
        assert arrays and (first is None or all(x is y for x, y in zip(arrays, first)))
        first = arrays
    seen = []
    t = threading.Thread(target=lambda: seen.extend(a for _, a, _ in kern.scratch_for(100)))
    t.start()
    t.join()
    assert not any(x is y for x in seen for y in first)  # each thread has its own


def test_large_scratch_is_not_kept():
    n = 3_000_000  # chunked: scratch is one chunk, kept; the whole range would not be
    _, exe = compile_one(_axpy_kernel(n))
    kern = exe._kernels[0]
    assert kern.chunk and kern.scratch_for(kern.chunk)[0][1] is kern.scratch_for(kern.chunk)[0][1]
    big = kern.scratch_for(n)
    assert big[0][1] is not kern.scratch_for(n)[0][1]
    a, b = np.ones(n, np.float32), np.full(n, 3, np.float32)
    bufs = _bufs(a, b, n)
    count = 4
    threads = [threading.Thread(target=exe.run, args=(0, (count, 1, 1), w, w + 1, bufs, ()))
               for w in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    np.testing.assert_array_equal(bufs[2].view(np.float32), np.full(n, 7, np.float32))
