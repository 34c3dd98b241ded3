"""Per-call cost of the runtime's hot path on the local drivers, beside plain numpy.

The runtime records a function once into a reusable command buffer and per call binds
buffers, submits with a timeline semaphore and waits. This measures, on local-sync and
local-task:

* ``empty``: an empty reusable command buffer, queue_execute + wait;
* ``add4``: a reusable command buffer dispatching a 4-element float32 add (a Python kernel,
  so the figure is the HAL overhead plus one numpy add) with 3 bindings rebound per call;
* ``numpy``: the same add done directly with numpy (the reference).

Median over batches; writes benchmarks/results/submit.json.

    python benchmarks/bench_submit.py [--calls 5000] [--batches 7]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
from hal_local.sync import SyncDriver
from hal_local.task import TaskDriver

from hal_core.descriptors import LoaderInfo
from hal_core.hal import CommandBufferMode, EntryPoint
from hal_core.hal.executable import ExecutableLoader, LocalExecutable

RESULTS = Path(__file__).resolve().parent / "results" / "submit.json"
TARGET_US = 50.0


class AddExecutable(LocalExecutable):
    format = "bench-python"
    entry_points = (EntryPoint("add", binding_count=3),)

    def run(self, entry, workgroup_count, first, last, bindings, constants):
        a, b, out = (x.view(np.float32) for x in bindings)
        np.add(a[first:last], b[first:last], out=out[first:last])


class AddLoader(ExecutableLoader):
    format = "bench-python"

    def load(self, payload, entry_points):
        return AddExecutable()


class BenchRegistry:
    class _Reg:
        info = LoaderInfo("bench-python", "benchmark loader", "bench_submit:AddLoader")

    def loaders(self):
        return [self._Reg()]

    def create_loader(self, format):
        return AddLoader()


def per_call_us(fn, calls: int, batches: int) -> float:
    samples = []
    for _ in range(batches):
        start = time.perf_counter()
        fn(calls)
        samples.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(samples)


def bench_device(device, calls: int, batches: int) -> dict[str, float]:
    sem = device.create_semaphore()
    state = {"v": 0}
    empty = device.create_command_buffer(CommandBufferMode.REUSABLE).begin().end()

    def run_empty(n: int) -> None:
        v = state["v"]
        for _ in range(n):
            v += 1
            device.queue_execute(None, [(sem, v)], [empty])
            sem.wait(v)
        state["v"] = v

    exe = device.executable_cache.prepare("bench-python", b"", AddExecutable.entry_points)
    add = device.create_command_buffer(CommandBufferMode.REUSABLE, binding_capacity=3)
    with add:
        add.dispatch(exe, 0, (4, 1, 1), [0, 1, 2])
    alloc = device.allocator
    a = alloc.import_host(np.arange(4, dtype=np.float32))
    b = alloc.import_host(np.ones(4, dtype=np.float32))
    out = alloc.allocate_buffer(16)

    def run_add(n: int) -> None:
        v = state["v"]
        for _ in range(n):
            v += 1
            device.queue_execute(None, [(sem, v)], [add], [[a, b, out]])
            sem.wait(v)
        state["v"] = v

    result = {
        "empty_us": per_call_us(run_empty, calls, batches),
        "add4_us": per_call_us(run_add, calls, batches),
    }
    assert out.map().view(np.float32).tolist() == [1.0, 2.0, 3.0, 4.0]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--batches", type=int, default=7)
    args = parser.parse_args()

    x, y = np.arange(4, dtype=np.float32), np.ones(4, dtype=np.float32)
    z = np.empty(4, np.float32)

    def run_numpy(n: int) -> None:
        for _ in range(n):
            np.add(x, y, out=z)

    figures = {"numpy_add4_us": per_call_us(run_numpy, args.calls, args.batches)}
    for driver, uri in ((SyncDriver(BenchRegistry()), None), (TaskDriver(BenchRegistry()), None)):
        with driver.create_device(uri) as device:
            for key, value in bench_device(device, args.calls, args.batches).items():
                figures[f"{driver.name}_{key}"] = value
    report = {
        "figures_us": {k: round(v, 2) for k, v in figures.items()},
        "target_us": {"local-sync_add4_us": TARGET_US},
        "calls": args.calls,
        "batches": args.batches,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    for key, value in figures.items():
        print(f"{key:28s} {value:8.2f} us")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
