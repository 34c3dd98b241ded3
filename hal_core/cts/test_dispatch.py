"""CTS: dispatches of executables compiled by a registered target (vmvx on the local drivers).

One dispatch, bindings with offsets, several entry points of one executable, many workgroups
writing their coordinates, chains of dispatches separated by barriers, reusable command buffers
resubmitted with other binding tables, and failures. Results are checked element by element
against numpy.
"""

from __future__ import annotations

import numpy as np
import pytest

from hal_core.compiler import kernel_ir as K
from hal_core.cts.executables import (
    download,
    elementwise,
    ident,
    linear_ids,
    operand,
    prepare,
    read_bytes,
    submit,
    sum_all,
    upload,
    write_bytes,
)
from hal_core.errors import HalError, UsageError
from hal_core.hal import CommandBufferMode

F32 = "float32"


def rng(seed=0):
    return np.random.default_rng(seed)


def test_one_dispatch(hal_device):
    n = 1000
    p = prepare(hal_device, elementwise("add", (n,), F32, "add"))
    x, y = rng().random(n, np.float32), rng(1).random(n, np.float32)
    a, b = upload(hal_device, x), upload(hal_device, y)
    out = hal_device.allocator.allocate_buffer(4 * n)
    with hal_device.create_command_buffer() as cb:
        cb.dispatch(p.executable, 0, p.workgroup_counts[0], [a, b, out])
    submit(hal_device, [cb])
    np.testing.assert_array_equal(download(hal_device, out, np.float32), x + y)
    # The inputs are untouched.
    np.testing.assert_array_equal(download(hal_device, a, np.float32), x)


@pytest.mark.parametrize("dtype", ["float64", "int32", "int8", "uint16"])
def test_one_dispatch_per_dtype(hal_device, dtype):
    shape = (7, 33)
    p = prepare(hal_device, elementwise("mul3", shape, dtype, "mul", const=3))
    x = (rng().random(shape) * 60 - 30).astype(dtype)
    out = hal_device.allocator.allocate_buffer(x.nbytes)
    with hal_device.create_command_buffer() as cb:
        cb.dispatch(p.executable, "mul3", p.workgroup_counts[0], [upload(hal_device, x), out])
    submit(hal_device, [cb])
    np.testing.assert_array_equal(download(hal_device, out, dtype, shape), x * np.asarray(3, dtype))


def test_bindings_with_offsets_and_shared_buffers(hal_device):
    # Operands at byte offsets inside one binding, and a dispatch binding a range of a buffer.
    n = 256
    k = elementwise(
        "sub",
        (n,),
        F32,
        "sub",
        ins=[operand(0, (n,), F32, 0), operand(0, (n,), F32, 4 * n)],
        out=operand(1, (n,), F32, 64),
    )
    p = prepare(hal_device, k)
    x = rng().random(2 * n, np.float32)
    src = hal_device.allocator.import_host(bytes(128) + x.tobytes())
    dst = hal_device.allocator.allocate_buffer(128 + 64 + 4 * n + 64)
    write_bytes(hal_device, dst, b"\x5a" * dst.size)
    before = read_bytes(hal_device, dst)
    with hal_device.create_command_buffer() as cb:
        cb.dispatch(
            p.executable, 0, p.workgroup_counts[0], [(src, 128, 8 * n), (dst, 128, 64 + 4 * n)]
        )
    submit(hal_device, [cb])
    after = read_bytes(hal_device, dst)
    np.testing.assert_array_equal(
        np.frombuffer(after[192 : 192 + 4 * n], np.float32), x[:n] - x[n:]
    )
    assert after[:192] == before[:192] and after[192 + 4 * n :] == before[192 + 4 * n :]


def test_several_entry_points_in_one_executable(hal_device):
    n = 300
    kernels = [
        elementwise("add", (n,), F32, "add"),
        elementwise("max", (n,), F32, "max"),
        elementwise("scale", (n,), F32, "mul", const=-2.5),
        sum_all("total", n, F32, "float64"),
    ]
    p = prepare(hal_device, *kernels)
    assert p.entry_names == ("add", "max", "scale", "total")
    x, y = rng().random(n, np.float32) - 0.5, rng(1).random(n, np.float32) - 0.5
    a, b = upload(hal_device, x), upload(hal_device, y)
    alloc = hal_device.allocator
    outs = [alloc.allocate_buffer(4 * n) for _ in range(3)] + [alloc.allocate_buffer(8)]
    with hal_device.create_command_buffer() as cb:
        cb.dispatch(p.executable, 0, p.workgroup_counts[0], [a, b, outs[0]])
        cb.dispatch(p.executable, "max", p.workgroup_counts[1], [a, b, outs[1]])
        cb.dispatch(p.executable, 2, p.workgroup_counts[2], [b, outs[2]])
        cb.dispatch(p.executable, "total", p.workgroup_counts[3], [a, outs[3]])
    submit(hal_device, [cb])
    np.testing.assert_array_equal(download(hal_device, outs[0], np.float32), x + y)
    np.testing.assert_array_equal(download(hal_device, outs[1], np.float32), np.maximum(x, y))
    np.testing.assert_array_equal(download(hal_device, outs[2], np.float32), y * np.float32(-2.5))
    np.testing.assert_allclose(
        download(hal_device, outs[3], np.float64)[0], x.astype(np.float64).sum(), rtol=1e-12
    )


@pytest.mark.parametrize("shape", [(4_000_000,), (2048, 1500), (3, 700, 999)])
def test_many_workgroups_write_their_coordinates(hal_device, shape):
    p = prepare(hal_device, linear_ids("ids", shape))
    count = p.workgroup_counts[0]
    assert count[0] * count[1] * count[2] > 1, (
        f"target {p.target!r} put {int(np.prod(shape))} elements into one workgroup; "
        f"this suite needs a tiled dispatch"
    )
    out = hal_device.allocator.allocate_buffer(8 * int(np.prod(shape)))
    with hal_device.create_command_buffer() as cb:
        cb.fill(out, b"\xff" * 4)  # -1 everywhere: an element no workgroup wrote shows up
        cb.execution_barrier()
        cb.dispatch(p.executable, 0, count, [out])
    submit(hal_device, [cb])
    ids = download(hal_device, out, np.int64)
    mismatch = np.flatnonzero(ids != np.arange(ids.size, dtype=np.int64))
    assert mismatch.size == 0, (
        f"{mismatch.size} of {ids.size} elements wrong, first at {mismatch[:5].tolist()}: "
        f"{ids[mismatch[:5]].tolist()} (workgroup count {count})"
    )


def test_chain_of_dispatches_with_barriers(hal_device):
    n = 200_000
    steps = [
        ("add", 1.0),
        ("mul", 3.0),
        ("sub", 0.5),
        ("mul", -1.0),
        ("add", 7.0),
        ("max", 2.0),
        ("mul", 0.25),
        ("min", 2.5),
    ]
    kernels = [elementwise(f"s{i}", (n,), F32, op, const=c) for i, (op, c) in enumerate(steps)]
    kernels.append(sum_all("total", n, F32, "float64"))
    p = prepare(hal_device, *kernels)
    x = rng().random(n, np.float32)
    alloc = hal_device.allocator
    bufs = [upload(hal_device, x), alloc.allocate_buffer(4 * n)]
    total = alloc.allocate_buffer(8)
    with hal_device.create_command_buffer() as cb:
        for i in range(len(steps)):
            # Each dispatch reads what the previous one wrote (ping-pong between two buffers).
            cb.dispatch(p.executable, i, p.workgroup_counts[i], [bufs[i % 2], bufs[1 - i % 2]])
            cb.execution_barrier()
        cb.dispatch(p.executable, len(steps), p.workgroup_counts[-1], [bufs[len(steps) % 2], total])
    submit(hal_device, [cb])
    ref = x.copy()
    ufuncs = {
        "add": np.add,
        "mul": np.multiply,
        "sub": np.subtract,
        "max": np.maximum,
        "min": np.minimum,
    }
    for op, c in steps:
        ref = ufuncs[op](ref, np.float32(c))
    np.testing.assert_array_equal(download(hal_device, bufs[len(steps) % 2], np.float32), ref)
    np.testing.assert_allclose(
        download(hal_device, total, np.float64)[0], ref.astype(np.float64).sum(), rtol=1e-9
    )


def test_chain_across_submissions_ordered_by_semaphores(hal_device):
    n = 100_000
    p = prepare(hal_device, elementwise("inc", (n,), "int32", "add", const=1))
    alloc = hal_device.allocator
    bufs = [upload(hal_device, np.zeros(n, np.int32)), alloc.allocate_buffer(4 * n)]
    sem = hal_device.create_semaphore()
    cbs = []
    for i in range(6):
        with hal_device.create_command_buffer() as cb:
            cb.dispatch(p.executable, 0, p.workgroup_counts[0], [bufs[i % 2], bufs[1 - i % 2]])
        cbs.append(cb)
    # Submitted in reverse order: only the semaphore waits order them.
    for i in reversed(range(6)):
        hal_device.queue_execute([(sem, i)], [(sem, i + 1)], [cbs[i]])
    sem.wait(6, 10.0)
    np.testing.assert_array_equal(download(hal_device, bufs[0], np.int32), np.full(n, 6, np.int32))


@pytest.mark.hal_feature("reusable_command_buffers")
def test_reusable_command_buffer_with_different_bindings(hal_device):
    n = 50_000
    kernels = [
        elementwise("add", (n,), F32, "add"),
        elementwise("twice", (n,), F32, "mul", const=2.0),
    ]
    p = prepare(hal_device, *kernels)
    cb = hal_device.create_command_buffer(CommandBufferMode.REUSABLE, binding_capacity=4)
    with cb:
        cb.dispatch(p.executable, 0, p.workgroup_counts[0], [0, 1, 2])
        cb.execution_barrier()
        cb.dispatch(p.executable, 1, p.workgroup_counts[1], [2, (3, 64, 4 * n)])
    alloc = hal_device.allocator
    calls = []
    for seed in range(3):
        x, y = rng(seed).random(n, np.float32), rng(seed + 10).random(n, np.float32)
        table = [
            upload(hal_device, x),
            upload(hal_device, y),
            alloc.allocate_buffer(4 * n),
            alloc.allocate_buffer(64 + 4 * n),
        ]
        calls.append((x, y, table))
    for _ in range(2):  # every table twice, interleaved: nothing sticks from an earlier call
        for x, y, table in calls:
            write_bytes(hal_device, table[3], bytes(table[3].size))
            submit(hal_device, [cb], [table])
            np.testing.assert_array_equal(download(hal_device, table[2], np.float32), x + y)
            np.testing.assert_array_equal(
                np.frombuffer(read_bytes(hal_device, table[3])[64:], np.float32), (x + y) * np.float32(2)
            )


@pytest.mark.hal_feature("reusable_command_buffers")
def test_reusable_command_buffer_submitted_many_times(hal_device):
    n = 1024
    p = prepare(hal_device, elementwise("inc", (n,), "int64", "add", const=1))
    a = upload(hal_device, np.zeros(n, np.int64))
    b = upload(hal_device, np.zeros(n, np.int64))
    cb = hal_device.create_command_buffer(CommandBufferMode.REUSABLE, binding_capacity=2)
    with cb:
        # Ping-pong between two slots (bindings of one dispatch never overlap): a -> b -> a.
        cb.dispatch(p.executable, 0, p.workgroup_counts[0], [0, 1])
        cb.execution_barrier()
        cb.dispatch(p.executable, 0, p.workgroup_counts[0], [1, 0])
    sem = hal_device.create_semaphore()
    for i in range(20):
        hal_device.queue_execute([(sem, i)], [(sem, i + 1)], [cb], [[a, b]])
    sem.wait(20, 10.0)
    np.testing.assert_array_equal(download(hal_device, a, np.int64), np.full(n, 40, np.int64))
    np.testing.assert_array_equal(download(hal_device, b, np.int64), np.full(n, 39, np.int64))


def test_zero_workgroups_run_nothing(hal_device):
    p = prepare(hal_device, elementwise("neg", (16,), F32, "mul", const=-1.0))
    src = upload(hal_device, np.ones(16, np.float32))
    out = upload(hal_device, np.full(16, 9, np.float32))
    with hal_device.create_command_buffer() as cb:
        cb.dispatch(p.executable, 0, (0, 1, 1), [src, out])
    submit(hal_device, [cb])
    np.testing.assert_array_equal(download(hal_device, out, np.float32), np.full(16, 9, np.float32))


def test_dispatch_recording_errors(hal_device):
    p = prepare(hal_device, elementwise("add", (8,), F32, "add"))
    a = hal_device.allocator.allocate_buffer(32)
    count = p.workgroup_counts[0]
    cb = hal_device.create_command_buffer().begin()
    with pytest.raises(UsageError, match="3 bindings, got 2"):
        cb.dispatch(p.executable, 0, count, [a, a])
    with pytest.raises(UsageError, match="no entry point 'nope'"):
        cb.dispatch(p.executable, "nope", count, [a, a, a])
    with pytest.raises(UsageError, match="out of range"):
        cb.dispatch(p.executable, 1, count, [a, a, a])
    with pytest.raises(UsageError, match="workgroup_count"):
        cb.dispatch(p.executable, 0, (1, -1, 1), [a, a, a])
    with pytest.raises(UsageError, match="0 constants, got 1"):
        cb.dispatch(p.executable, 0, count, [a, a, a], [7])


@pytest.mark.hal_feature("out_of_bounds_detection")
def test_a_failing_dispatch_fails_the_submission_and_the_device_goes_on(hal_device):
    n = 64
    p = prepare(hal_device, elementwise("add", (n,), F32, "add"))
    small = hal_device.allocator.allocate_buffer(16)  # the kernel reads 4 * n bytes
    big = [hal_device.allocator.allocate_buffer(4 * n) for _ in range(3)]
    with hal_device.create_command_buffer() as cb:
        cb.dispatch(p.executable, 0, p.workgroup_counts[0], [small, big[1], big[2]])
    sem = hal_device.create_semaphore()
    try:
        hal_device.queue_execute([], [(sem, 1)], [cb])
    except HalError:
        pass  # refusing the submission up front is conformant too
    else:
        with pytest.raises(HalError):
            sem.wait(1, 10.0)
    # The device still runs good work afterwards.
    x = rng().random(n, np.float32)
    with hal_device.create_command_buffer() as cb2:
        cb2.dispatch(
            p.executable,
            0,
            p.workgroup_counts[0],
            [upload(hal_device, x), upload(hal_device, x), big[0]],
        )
    submit(hal_device, [cb2])
    np.testing.assert_array_equal(download(hal_device, big[0], np.float32), x + x)


def test_reduction_and_broadcast_maps(hal_device):
    # Row sums of a (rows, cols) matrix plus a broadcast row vector: maps that are not identity.
    rows, cols = 300, 257
    sums = K.GenericKernel(
        "rowsum",
        (rows, cols),
        ("parallel", "reduction"),
        (ident(operand(0, (rows, cols), F32)),),
        (K.MappedOperand(operand(1, (rows,), F32), K.IndexingMap.of_dims(2, (0,))),),
        (K.ScalarOp("add", (K.Input(0), K.Const(0.0, F32)), F32),),
        (K.Result(0),),
        ("sum",),
    )
    bcast = K.GenericKernel(
        "addrow",
        (rows, cols),
        ("parallel", "parallel"),
        (
            ident(operand(0, (rows, cols), F32)),
            K.MappedOperand(operand(1, (cols,), F32), K.IndexingMap.of_dims(2, (1,))),
        ),
        (ident(operand(2, (rows, cols), F32)),),
        (K.ScalarOp("add", (K.Input(0), K.Input(1)), F32),),
        (K.Result(0),),
    )
    p = prepare(hal_device, sums, bcast)
    m, v = rng().random((rows, cols), np.float32), rng(1).random(cols, np.float32)
    alloc = hal_device.allocator
    mb, vb = upload(hal_device, m), upload(hal_device, v)
    s, o = alloc.allocate_buffer(4 * rows), alloc.allocate_buffer(m.nbytes)
    with hal_device.create_command_buffer() as cb:
        cb.dispatch(p.executable, 0, p.workgroup_counts[0], [mb, s])
        cb.dispatch(p.executable, 1, p.workgroup_counts[1], [mb, vb, o])
    submit(hal_device, [cb])
    np.testing.assert_allclose(download(hal_device, s, np.float32), m.sum(axis=1), rtol=1e-5)
    np.testing.assert_array_equal(download(hal_device, o, np.float32, (rows, cols)), m + v)
