"""Large constants: peak memory of compile + write, and parsing a text constant.

* ``compile_write``: a function returning ``x + C`` with a constant ``C`` of ``--mib`` MiB
  (built with the Python builder, which keeps one copy of it), compiled for vmvx and written to
  a .halm file. Figure: the peak resident memory the compile and the write add beyond what
  the process holds once the builder has the constant, as a multiple of the constant's size
  (zero-copy: about 0; each copy of the constant adds 1). Reference in the same run:
  ``numpy.save`` of the same array (which copies nothing).
* ``parse``: the text IR of a ``--mib`` MiB ``i8`` constant in hex (``dense<"0x...">``);
  figure: ``hal_core.ir.parse`` time, beside ``bytes.fromhex`` of the same digits.

Each measurement runs in a fresh subprocess; the peak is Linux's VmHWM after resetting it
(``/proc/self/clear_refs``). Writes benchmarks/results/constants.json.

    python benchmarks/bench_constants.py [--mib 98]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "constants.json"

_CHILD = r'''
import gc, json, os, sys, time
import numpy as np

def rss(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(field)

def reset_peak():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")

mode, mib, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
n = mib * (1 << 20) // 4
if mode == "parse":
    from hal_core.ir import parse
    digits = np.random.default_rng(0).integers(0, 256, mib << 20, dtype=np.uint8).tobytes().hex()
    text = (f'func.func @main() -> tensor<{mib << 20}xi8> {{\n  %0 = constant dense<"0x'
            f'{digits}"> : tensor<{mib << 20}xi8>\n  return %0 : tensor<{mib << 20}xi8>\n}}\n')
    t = time.perf_counter(); bytes.fromhex(digits); ref = time.perf_counter() - t
    t = time.perf_counter(); parse(text); hal = time.perf_counter() - t
    print(json.dumps({"parse_s": hal, "fromhex_s": ref}))
    sys.exit()
import hal_core
from hal_core import ir
from hal_core.module.writer import write_module
c = np.arange(n, dtype=np.float32)
if mode == "numpy":
    gc.collect(); base = rss("VmRSS"); reset_peak()
    np.save(out, c)
else:
    b = ir.Builder()
    with b.function("main", [("x", (n,), "f32")]) as f:
        f.ret(f.args[0] + f.constant(c))
    del c, f
    gc.collect(); base = rss("VmRSS"); reset_peak()
    m = hal_core.compile(b, ["vmvx"])
    write_module(m, out)
peak = rss("VmHWM")
print(json.dumps({"extra_bytes": peak - base, "constant_bytes": n * 4}))
'''


def child(mode: str, mib: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        out = subprocess.run([sys.executable, "-c", _CHILD, mode, str(mib), str(Path(d) / "o")],
                             capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mib", type=int, default=98)
    args = p.parse_args()
    hal = child("hal", args.mib)
    ref = child("numpy", args.mib)
    parse = child("parse", args.mib)
    result = {
        "machine": platform.machine(), "python": platform.python_version(),
        "constant_mib": args.mib,
        "compile_write_extra_peak_x": round(hal["extra_bytes"] / hal["constant_bytes"], 3),
        "numpy_save_extra_peak_x": round(ref["extra_bytes"] / ref["constant_bytes"], 3),
        "parse_hex_constant_s": round(parse["parse_s"], 3),
        "bytes_fromhex_s": round(parse["fromhex_s"], 3),
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
