"""Large constants go from the builder to the file without copies: the peak memory compile +
write add stays a small fraction of the constant (each copy would add 1x)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from hal_core.compiler.passes.buffers import ConstantPool, constant_bytes
from hal_core.compiler.passes.folding import is_splat

_CHILD = r'''
import gc, json, sys
import numpy as np
import hal_core
from hal_core import ir
from hal_core.module.reader import load_module_file
from hal_core.module.writer import write_module

def rss(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024

n = (48 << 20) // 4
c = np.arange(n, dtype=np.float32)
b = ir.Builder()
with b.function("main", [("x", (n,), "f32")]) as f:
    f.ret(f.args[0] + f.constant(c))
del c, f
gc.collect()
base = rss("VmRSS")
with open("/proc/self/clear_refs", "w") as fh:
    fh.write("5")  # reset the peak (VmHWM)
m = hal_core.compile(b, ["vmvx"])
write_module(m, sys.argv[1])
extra = rss("VmHWM") - base
again = load_module_file(sys.argv[1])
ok = bool(np.frombuffer(again.constants[0].data, np.float32)[-1] == n - 1)
print(json.dumps({"extra": extra / (n * 4), "ok": ok}))
'''


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_compile_and_write_add_no_copy_of_a_large_constant(tmp_path):
    out = subprocess.run([sys.executable, "-c", _CHILD, str(tmp_path / "m.halm")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["ok"]
    assert result["extra"] < 0.5, result  # one copy of the constant would be 1.0


def test_constant_bytes_are_a_view_when_possible():
    a = np.arange(10, dtype=np.float32)
    view = constant_bytes(a)
    assert np.shares_memory(np.frombuffer(view, np.uint8), a)
    big = np.arange(4, dtype=">i4")  # big-endian: converted to little-endian bytes
    assert bytes(constant_bytes(big)) == np.arange(4, dtype="<i4").tobytes()
    t = np.arange(6, dtype=np.int16).reshape(2, 3).T  # not contiguous: a contiguous copy
    assert bytes(constant_bytes(t)) == np.ascontiguousarray(t).tobytes()


def test_constant_pool_deduplicates_by_content():
    pool = ConstantPool()
    a = constant_bytes(np.arange(100, dtype=np.int32))
    assert pool.add("a", a) == 0
    assert pool.add("b", constant_bytes(np.arange(100, dtype=np.int32))) == 0
    assert pool.add("c", constant_bytes(np.arange(100, dtype=np.uint32))) == 0  # same bytes
    assert pool.add("d", constant_bytes(np.arange(1, 101, dtype=np.int32))) == 1
    assert pool.names == ["a", "d"]


def test_is_splat_compares_bytes():
    assert is_splat(np.full((300, 300), 2.5, np.float32))
    x = np.full(200_000, 1.0)
    x[-1] = 1.0000001
    assert not is_splat(x)
    assert not is_splat(np.array([0.0, -0.0]))
    assert is_splat(np.array(True)) and not is_splat(np.zeros(0))
