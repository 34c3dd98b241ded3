"""The end-to-end op suite's machinery: cases, the targets they run on, compile-once caching.

A :class:`Case` is a small tensor-IR program (built with :class:`hal_core.ir.Builder`) plus
numpy inputs. Each case is compiled once per target and run on every device of that target;
results are compared with the numpy reference evaluator (:func:`hal_core.ir.evaluate`) and,
where the case gives one, with a plain numpy expression.

To run the whole suite on a new target, add it to :data:`TARGETS` with the devices that can run
what it produces, or set ``HAL_E2E_TARGETS`` for one run, e.g.
``HAL_E2E_TARGETS="llvm-cpu=local-sync,local-task;vmvx=local-sync"``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

import hal_core
from hal_core.ir import Builder, evaluate
from hal_core.module.model import Dispatch

#: target backend -> devices that run its variants. Later targets add a line here.
TARGETS: dict[str, tuple[str, ...]] = {
    "vmvx": ("local-sync", "local-task"),
    "llvm-cpu": ("local-sync", "local-task"),
    "vulkan-spirv": ("vulkan",),
}


def _targets_from_env(spec: str) -> dict[str, tuple[str, ...]]:
    out = {}
    for part in filter(None, (p.strip() for p in spec.split(";"))):
        target, _, devices = part.partition("=")
        names = tuple(d.strip() for d in devices.split(",") if d.strip())
        if not target.strip() or not names:
            raise ValueError(f"HAL_E2E_TARGETS: expected 'target=device,device;...', "
                             f"found {part!r}")
        out[target.strip()] = names
    return out


if os.environ.get("HAL_E2E_TARGETS"):
    TARGETS = _targets_from_env(os.environ["HAL_E2E_TARGETS"])
TARGET_DEVICES = [pytest.param(t, d, id=f"{t}-{d}") for t, ds in TARGETS.items() for d in ds]
#: The inline execution model runs kernels on the host through the local executable loaders, so
#: only targets whose devices are the local ones take part in it.
INLINE_TARGETS = [t for t, ds in TARGETS.items() if set(ds) <= {"local-sync", "local-task"}]

#: (case id, device) -> why that device is known to get the case wrong. The case is marked a
#: strict expected failure there (tests/e2e/conftest.py), so a fixed driver shows up as XPASS.
KNOWN_DEVICE_BUGS: dict[tuple[str, str], str] = {
    # The suite compiles for the default target environment (lavapipe, Vulkan 1.1), which has
    # no float controls, so drivers may fold x * -0.0 to +0.0: the H200 did (with a Vulkan 1.3
    # environment, where the shader asks for SignedZeroInfNanPreserve, it gave -inf), and Mesa
    # lavapipe 22.3 does even under SignedZeroInfNanPreserve.
    ("negative-zero-constant", "vulkan"): "x * -0.0 folds to +0.0 without float controls "
    "(Vulkan 1.1 environment) and on Mesa lavapipe 22.3 even with them, so 1/(x*-0.0) gives "
    "+inf instead of -inf",
}


@dataclass
class Case:
    id: str
    build: Callable[..., Any]                 # tensors -> result tensor(s)
    inputs: tuple[np.ndarray, ...]
    expected: Callable[..., Any] | None = None  # numpy expression, besides the evaluator
    rtol: float = 1e-5
    atol: float = 1e-6
    dispatches: int | None = None             # expected dispatches per call (fusion checks)
    ops: tuple[str, ...] = field(default=())  # IR ops the case exercises (coverage check)

    def function(self) -> Any:
        b = Builder()
        specs = [(f"a{i}", x.shape, x.dtype.name) for i, x in enumerate(self.inputs)]
        with b.function("main", specs) as f:
            out = self.build(*f.args)
            f.ret(*(out if isinstance(out, tuple) else (out,)))
        return b.module()


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def data(shape: Sequence[int], dtype: str = "float32", seed: int = 0, lo: float = -3,
         hi: float = 3) -> np.ndarray:
    g = rng(seed)
    dt = np.dtype(dtype)
    if dt == np.bool_:
        return g.random(shape) < 0.5
    if dt.kind in "iu":
        lo_i = max(int(lo), np.iinfo(dt).min)
        return g.integers(lo_i, int(hi) + 1, size=shape, endpoint=False).astype(dt)
    return g.uniform(lo, hi, size=shape).astype(dt)


_compiled: dict[tuple[str, str], Any] = {}
_devices: dict[str, Any] = {}


def compiled(case: Case, target: str, execution_model: str = "async") -> tuple[Any, Any]:
    """(tensor IR module, hal module) of ``case`` for ``target``; compiled once per session."""
    key = (case.id, target, execution_model)
    if key not in _compiled:
        ir = case.function()
        _compiled[key] = (ir, hal_core.compile(ir, target_backends=(target,),
                                                 execution_model=execution_model))
    return _compiled[key]


def device(name: str) -> Any:
    if name not in _devices:
        from hal_core.errors import HalError
        from hal_core.registry import get_registry

        try:
            _devices[name] = get_registry().create_device(name)
        except HalError as e:
            # Local devices always exist; a GPU may not. CI installs lavapipe (.ci/run), so
            # there a missing device is a failure, elsewhere a skip that says why.
            if name.startswith("local") or os.environ.get("CI"):
                raise
            pytest.skip(f"device {name!r} is not available here: {e}")
    return _devices[name]


def dispatch_count(module: Any) -> int:
    return sum(isinstance(op, Dispatch) for op in module.functions[0].program)


def assert_close(got: np.ndarray, want: np.ndarray, rtol: float, atol: float, what: str) -> None:
    want = np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype}, expected {want.dtype}"
    if want.dtype.kind == "f":
        np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64),
                                   rtol=rtol, atol=atol, equal_nan=True, err_msg=what)
    else:
        np.testing.assert_array_equal(got, want, err_msg=what)


def run_case(case: Case, target: str, device_name: str,
             execution_model: str = "async") -> None:
    ir, module = compiled(case, target, execution_model)
    loaded = hal_core.load_module(module, device=device(device_name))
    try:
        got = loaded.main(*case.inputs)
    finally:
        loaded.close()
    got = got if isinstance(got, tuple) else (got,)
    with np.errstate(all="ignore"):
        want = evaluate(ir.functions[0], *case.inputs)
        extra = case.expected(*case.inputs) if case.expected is not None else None
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        assert_close(np.asarray(g), w, case.rtol, case.atol, f"{case.id} result {i}")
    if extra is not None:
        extra = extra if isinstance(extra, tuple) else (extra,)
        for i, (g, w) in enumerate(zip(got, extra)):
            w = np.asarray(w)
            assert_close(np.asarray(g), w.astype(np.asarray(g).dtype), case.rtol, case.atol,
                         f"{case.id} result {i} vs numpy")
    if case.dispatches is not None:
        assert dispatch_count(module) == case.dispatches, \
            f"{case.id}: {dispatch_count(module)} dispatches, expected {case.dispatches}"


def params(cases: Sequence[Case]) -> list[Any]:
    return [pytest.param(c, id=c.id) for c in cases]
