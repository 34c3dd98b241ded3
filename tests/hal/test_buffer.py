from __future__ import annotations

import numpy as np
import pytest

from hal_core.errors import UsageError
from hal_core.hal import Allocator, BufferUsage, BufferView, MemoryType
from hal_core.hal.buffer import fill_pattern


def test_fill_pattern_forms():
    assert fill_pattern(0x0102, 2) == b"\x02\x01"
    assert fill_pattern(7) == b"\x07"
    assert fill_pattern(b"\x01\x02\x03\x04") == b"\x01\x02\x03\x04"
    with pytest.raises(UsageError, match="does not fit"):
        fill_pattern(0x1FF, 1)
    with pytest.raises(UsageError, match="1, 2 or 4"):
        fill_pattern(0, 3)
    with pytest.raises(UsageError, match="pattern_length"):
        fill_pattern(b"\x01\x02", 4)
    with pytest.raises(UsageError, match="bytes or an int"):
        fill_pattern(1.5)


def test_subspan_of_released_buffer_is_refused():
    buf = Allocator("t").allocate_buffer(16)
    sub = buf.subspan(4)
    buf.release()
    assert sub.released
    with pytest.raises(UsageError, match="released"):
        sub.map()


def test_incompatible_memory_request():
    alloc = Allocator("dev://")
    assert not alloc.query_compatibility(MemoryType.OPTIMAL, BufferUsage.DEFAULT)
    with pytest.raises(UsageError, match="dev://"):
        alloc.allocate_buffer(8, memory_type=MemoryType.OPTIMAL)


def test_write_accepts_numpy_arrays_and_view_dtypes():
    alloc = Allocator()
    buf = alloc.allocate_buffer(16)
    buf.write(np.array([1.5, -2.0], dtype=np.float64))
    view = BufferView(buf, (2,), "float64")
    np.testing.assert_array_equal(view.to_numpy(), [1.5, -2.0])
    assert repr(view) == "<BufferView 2xfloat64>"


def test_buffer_view_at_offset():
    buf = Allocator().import_host(np.arange(8, dtype=np.int32))
    view = BufferView(buf, (2, 2), "int32", byte_offset=16)
    np.testing.assert_array_equal(view.to_numpy(), [[4, 5], [6, 7]])


def test_write_rejects_non_bytes():
    buf = Allocator().allocate_buffer(8)
    with pytest.raises(UsageError, match="Buffer.write: expected bytes-like"):
        buf.write(12)
    with pytest.raises(UsageError, match="element type"):
        BufferView(buf, (2,), None)


def test_importing_the_object_model_leaves_numpy_out():
    import subprocess
    import sys

    code = "import sys, hal_core.hal; assert 'numpy' not in sys.modules, 'numpy imported'"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
