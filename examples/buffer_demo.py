"""Buffers, a reusable command buffer and a timeline semaphore on both local drivers.

Run: python examples/buffer_demo.py
"""

from __future__ import annotations

import numpy as np

from hal_core.hal import BufferView, CommandBufferMode
from hal_core.registry import get_registry


def demo(driver_name: str) -> None:
    driver = get_registry().create_driver(driver_name)
    with driver.create_default_device() as device:
        props = device.properties()
        print(
            f"{device.id}: {props['architecture']}, {props['workers']} worker(s), "
            f"formats: {', '.join(device.query_formats()) or 'none'}"
        )

        source = BufferView.from_numpy(device.allocator, np.arange(8, dtype=np.int32))
        target = device.allocator.allocate_buffer(64)

        # Recorded once against binding-table slots: 0 = source, 1 = target.
        cb = device.create_command_buffer(CommandBufferMode.REUSABLE, binding_capacity=2)
        with cb:
            cb.fill(1, 7, pattern_length=4)  # whole target
            cb.update(1, np.array([-1, -2], np.int32).tobytes(), offset=0)
            cb.execution_barrier()
            cb.copy(0, 1, source_offset=8, target_offset=16, length=16)  # source[2:6]

        timeline = device.create_semaphore(0)
        device.queue_execute(
            wait=[(timeline, 0)],
            signal=[(timeline, 1)],
            command_buffers=[cb],
            binding_tables=[[source.buffer, target]],
        )
        timeline.wait(1, timeout=5.0)
        print("  result:", BufferView(target, (16,), "int32").to_numpy()[:8].tolist())

        # The same command buffer again, with another source bound to slot 0.
        other = BufferView.from_numpy(device.allocator, np.arange(100, 108, dtype=np.int32))
        device.queue_execute([(timeline, 1)], [(timeline, 2)], [cb], [[other.buffer, target]])
        timeline.wait(2, timeout=5.0)
        print("  again: ", BufferView(target, (16,), "int32").to_numpy()[:8].tolist())


if __name__ == "__main__":
    for name in ("local-sync", "local-task"):
        demo(name)
