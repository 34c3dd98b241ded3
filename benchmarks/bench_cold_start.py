"""Cold start of `hal drivers list`, side by side with a reference, in one run.

Builds a fresh virtual environment (or, with --current-env, uses this interpreter's), installs
hal-core and every distribution under plugins/ non-editable, then times `hal drivers list` in a
new process N times (median), interleaved with the reference: `import iree.runtime` plus its
driver query when iree-base-runtime installs there, and always bare `python -c pass`.
Writes benchmarks/results/cold_start.json.

    python benchmarks/bench_cold_start.py               # fresh venv under /tmp
    python benchmarks/bench_cold_start.py --current-env # what is installed here
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 150.0
IREE_REFERENCE = "import iree.runtime; iree.runtime.query_available_drivers()"


def plugin_dirs() -> list[Path]:
    return sorted(p for p in (ROOT / "plugins").glob("*/") if (p / "pyproject.toml").exists())


def pip(python: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(python), "-m", "pip", "install", "--quiet", *args],
                          capture_output=True, text=True, check=False)


def build_venv(where: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(where / "venv")], check=True)
    python = where / "venv" / "bin" / "python"
    # pip builds local projects in place (build/, *.egg-info); build from copies instead.
    junk = shutil.ignore_patterns("build", "*.egg-info", "__pycache__", ".tox", "plugins",
                                  "tests", "benchmarks", ".git")
    sources = [where / "src" / "hal-core"]
    shutil.copytree(ROOT, sources[0], ignore=junk)
    for plugin in plugin_dirs():
        sources.append(where / "src" / plugin.name)
        shutil.copytree(plugin, sources[-1], ignore=junk)
    # Non-editable: a regular install is what users get and what the target is about.
    result = pip(python, *(str(s) for s in sources))
    if result.returncode != 0:
        sys.exit(f"installing hal-core and plugins failed:\n{result.stderr}")
    return python


def time_once(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                          check=False)
    elapsed = (time.perf_counter() - start) * 1000.0
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return elapsed


def summary(samples: list[float]) -> dict:
    return {"median_ms": round(statistics.median(samples), 2), "min_ms": round(min(samples), 2),
            "max_ms": round(max(samples), 2), "samples_ms": [round(s, 2) for s in samples]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--current-env", action="store_true",
                        help="use this interpreter's environment instead of a fresh venv")
    parser.add_argument("--runs", type=int, default=20, help="timed runs of each (>= 10)")
    parser.add_argument("--no-iree", action="store_true",
                        help="do not try to install iree-base-runtime for the reference")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks/results/cold_start.json")
    args = parser.parse_args()
    if args.runs < 10:
        parser.error("--runs must be at least 10")

    with tempfile.TemporaryDirectory(prefix="hal-bench-") as tmp:
        python = Path(sys.executable) if args.current_env else build_venv(Path(tmp))
        hal = python.parent / "hal"
        if not hal.exists():
            sys.exit(f"{hal} not found: is hal-core installed in {python}?")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HAL_", "PYTHON"))}
        env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
        has_iree = not args.no_iree and (
            subprocess.run([str(python), "-c", "import iree.runtime"], env=env,
                           capture_output=True, check=False).returncode == 0
            or (not args.current_env and pip(python, "iree-base-runtime").returncode == 0))
        commands = {"hal drivers list": [str(hal), "drivers", "list"],
                    "python -c pass": [str(python), "-c", "pass"]}
        if has_iree:
            commands["iree.runtime query_available_drivers"] = [str(python), "-c",
                                                                IREE_REFERENCE]
        listing = subprocess.run(commands["hal drivers list"], env=env, capture_output=True,
                                 text=True, check=False)
        for argv in commands.values():  # warm the OS file cache; we time process start-up
            time_once(argv, env)
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):  # interleaved, so load on the machine hits all alike
            for name, argv in commands.items():
                samples[name].append(time_once(argv, env))
        installed = subprocess.run([str(python), "-m", "pip", "list", "--format=json"],
                                   env=env, capture_output=True, text=True, check=False).stdout

    hal_median = statistics.median(samples["hal drivers list"])
    result = {
        "benchmark": "cold start of `hal drivers list` (new process each run)",
        "runs": args.runs,
        "target_ms": TARGET_MS,
        "meets_target": hal_median <= TARGET_MS,
        "results": {name: summary(s) for name, s in samples.items()},
        "listing": listing.stdout.splitlines(),
        "environment": {
            "fresh_venv": not args.current_env,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "load_average": list(os.getloadavg()),
            "hal_distributions": sorted(f"{d['name']}=={d['version']}" for d in
                                        json.loads(installed or "[]")
                                        if d["name"].startswith("hal")),
            "iree_reference": has_iree,
        },
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    for name, s in result["results"].items():
        print(f"{name:40s} median {s['median_ms']:8.1f} ms  (min {s['min_ms']:.1f}, "
              f"max {s['max_ms']:.1f})")
    print(f"target {TARGET_MS:.0f} ms: {'met' if result['meets_target'] else 'NOT met'}; "
          f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
