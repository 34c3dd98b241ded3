"""Probe a driver in a child process, so a native crash or a hang never takes the caller down.

Child: ``python -m hal_core._probe {probe|devices|dump} DRIVER`` (or ``create URI``: make and
close the device a URI names, as choosing a default device needs) prints one result line
(``MARKER`` + JSON) on stdout. Parent: :func:`run_children` starts one child per driver, waits for
all within one deadline, and turns a signal, a timeout or a missing result into a ``failed``
result. The child discovers plugins from the environment the parent passes
(:meth:`hal_core.registry.Registry.child_env`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, Literal

MARKER = "HAL_PROBE_RESULT "
WHATS = ("probe", "devices", "dump", "create")


@dataclass(frozen=True)
class ProbeResult:
    """The outcome of probing one driver.

    ``status``: ``available``; ``unavailable`` (the driver's probe gave ``reason``); ``failed``
    (import error, exception, signal such as SIGILL, or timeout, in ``reason``).
    ``devices`` (for ``devices``/``dump``): dicts with ``uri``, ``name``, ``properties`` and,
    for ``dump``, ``formats`` and ``features`` of the created device.
    """

    driver: str
    status: Literal["available", "unavailable", "failed"]
    reason: str | None = None
    devices: tuple[dict[str, Any], ...] = ()

    def describe(self) -> str:
        return self.status if self.reason is None else f"{self.status}: {self.reason}"


def _child(what: str, name: str) -> dict[str, Any]:
    from hal_core.descriptors import resolve
    from hal_core.registry import Registry, describe_exception

    spec = name
    name = name.partition("://")[0] if what == "create" else name
    try:
        registry = Registry()
        entry = registry.driver(name)
        if entry.info.probe:
            reason = resolve(entry.info.probe)()
            if reason:
                return {"status": "unavailable", "reason": str(reason)}
        resolve(entry.info.factory)  # importing the driver's module is what crashes natively
        if what == "probe":
            return {"status": "available"}
        if what == "create":
            registry.create_device(spec).close()
            return {"status": "available"}
        driver = registry.create_driver(name)
        devices = []
        for info in driver.query_available_devices():
            row: dict[str, Any] = {"uri": info.uri, "name": info.name,
                                   "properties": dict(info.properties)}
            if what == "dump":
                device = driver.create_device(info.uri)
                try:
                    row["properties"] = {**row["properties"], **dict(device.properties())}
                    row["formats"] = sorted(device.query_formats())
                    row["features"] = sorted(device.query_features())
                finally:
                    device.close()
            devices.append(row)
        return {"status": "available", "devices": devices}
    except Exception as exc:  # noqa: BLE001 - any failure of the driver is the answer
        return {"status": "failed", "reason": describe_exception(exc)}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in WHATS:
        sys.stderr.write(f"usage: python -m hal_core._probe {{{'|'.join(WHATS)}}} DRIVER\n")
        return 2
    result = _child(argv[0], argv[1])
    sys.stdout.write(MARKER + json.dumps(result, default=str) + "\n")
    sys.stdout.flush()
    return 0


def _interpret(name: str, rc: int | None, out: str, err: str, timeout: float) -> ProbeResult:
    if rc is None:
        return ProbeResult(name, "failed", f"timed out after {timeout:g} s (killed)")
    for line in reversed(out.splitlines()):
        if line.startswith(MARKER):
            try:
                data = json.loads(line[len(MARKER):])
                return ProbeResult(name, data["status"], data.get("reason"),
                                   tuple(data.get("devices", ())))
            except (ValueError, KeyError, TypeError):
                break
    if rc < 0:
        try:
            sig = signal.Signals(-rc).name
        except ValueError:
            sig = f"signal {-rc}"
        return ProbeResult(name, "failed", f"{sig} (the driver crashed natively while probing)")
    last = next((ln.strip() for ln in reversed(err.splitlines()) if ln.strip()), "no output")
    return ProbeResult(name, "failed", f"probe process exited with status {rc}: {last}")


def run_children(names: list[str], what: str, timeout: float, env: dict[str, str]
                 ) -> dict[str, ProbeResult]:
    """Probe every driver in ``names`` in parallel child processes; never raises for a driver."""
    started = []
    # Files rather than pipes: a chatty child can never block on a full pipe while we wait.
    with tempfile.TemporaryDirectory(prefix="hal-probe-") as tmp, ExitStack() as files:
        for i, name in enumerate(names):
            out = files.enter_context(open(os.path.join(tmp, f"{i}.out"), "w+"))
            err = files.enter_context(open(os.path.join(tmp, f"{i}.err"), "w+"))
            proc = subprocess.Popen([sys.executable, "-m", "hal_core._probe", what, name],
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                                    start_new_session=True)
            started.append((name, proc, out, err))
        deadline = time.monotonic() + timeout
        results = {}
        try:
            for name, proc, out, err in started:
                try:
                    rc: int | None = proc.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    rc = None
                    _kill(proc)
                out.seek(0)
                err.seek(0)
                results[name] = _interpret(name, rc, out.read(), err.read(), timeout)
        finally:  # Ctrl-C included: children run in their own session and would outlive us
            for _, proc, _, _ in started:
                if proc.poll() is None:
                    _kill(proc)
    return results


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # its own session: the child and anything it started
    except ProcessLookupError:
        pass
    proc.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
