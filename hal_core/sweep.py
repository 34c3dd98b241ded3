"""Try a model everywhere: compile it for every target, run it on every device, compare.

:func:`sweep` is what ``hal try MODEL`` prints as a table:

1. the model is a path or a short name one of the importers' tools knows (``squeezenet``: the
   onnx package's light model zoo, :attr:`~hal_core.descriptors.ImporterInfo.tools`);
2. its splat weights (one value repeated: every output then is the same and any result would
   match) are replaced by seeded random ones when the importer's tools can (``weights``);
3. it is imported once and compiled once per target (with vmvx beside a target that declines
   some kernels);
4. the drivers are probed in child processes (:meth:`~hal_core.registry.Registry.probe_many`),
   so a missing or crashing one becomes a row with its reason;
5. each device runs each module whose variants it can prepare: warm-up calls, then the median
   of timed calls; the outputs are compared with the reference, the importer's reference
   runtime (onnxruntime for onnx) when installed, else the numpy evaluation of the imported
   tensor IR (:func:`hal_core.ir.evaluate`), which no target or driver takes part in.

Inputs are seeded random: normal floats, integers in [0, 4), random booleans.
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from hal_core.compiler.progress import CompileProgress
from hal_core.errors import HalError, UnsupportedKernelError, UsageError

log = logging.getLogger(__name__)

WEIGHTS = ("auto", "random", "shipped")
REFERENCES = ("auto", "ir")
#: IREE's former target names registered as aliases: compiling them again would be a copy.
ALIASES = frozenset({"dylib-llvm-aot"})


@dataclass(frozen=True)
class Row:
    """One device and target: figures, or the ``problem`` that kept them from being measured.

    ``status``: ``"ok"`` (measured), ``"failed"`` (a compile, load or call failed, or the
    outputs do not fit the reference's) or ``"unavailable"`` (the driver or target is not
    usable here, or the device runs none of the compiled targets). ``chosen`` names the
    target backends of the variants the device picked (several when a target's module holds
    vmvx variants for kernels it declined); ``calls`` timed calls gave the median
    ``latency_s``; errors are the maxima over the outputs of |hal - reference|, and of that
    over max |reference|.
    """

    driver: str
    device: str
    target: str = ""
    chosen: str = ""
    compile_s: float | None = None
    latency_s: float | None = None
    calls: int = 0
    max_abs_error: float | None = None
    max_rel_error: float | None = None
    problem: str | None = None
    status: str = "ok"


@dataclass(frozen=True)
class Sweep:
    """What :func:`sweep` did: the model, how it was prepared, and one :class:`Row` each."""

    model: str
    path: str
    function: str
    weights: str
    inputs: str
    reference: str
    import_s: float
    rows: tuple[Row, ...] = field(default=())


def importer_tools(importer: str) -> Any | None:
    """The tools object of an importer (see ImporterInfo.tools), or None."""
    from hal_core.descriptors import resolve
    from hal_core.registry import get_registry

    entry = get_registry().importer(importer)
    spec = getattr(entry.info, "tools", None)
    if not spec:
        return None
    try:
        return resolve(spec)
    except Exception as exc:  # noqa: BLE001 - a broken tools object only costs its features
        log.warning("importer %r: cannot load its tools %s: %s", importer, spec, exc)
        return None


def find_model(model: str) -> tuple[str, str]:
    """(path, display name) of ``model``: an existing file, or a short name an importer's
    tools know; else a UsageError listing the short names."""
    from hal_core.registry import get_registry

    if os.path.isfile(model):
        return model, os.path.basename(model)
    names: dict[str, str] = {}
    for entry in get_registry().importers():
        if entry.error is None and getattr(entry.info, "tools", None):
            tools = importer_tools(entry.name)
            if tools is not None and hasattr(tools, "examples"):
                for short, where in tools.examples().items():
                    names.setdefault(short, where)
    if model in names:
        return names[model], model
    if os.sep in model or os.path.splitext(model)[1]:
        known = ", ".join(names) or "(none: no installed importer offers examples)"
        raise UsageError(f"model file {model!r} does not exist; give the path of a model "
                         f"file, or a short name: {known}")
    import difflib

    close = difflib.get_close_matches(model, list(names), n=1)
    raise UsageError(f"{model!r} is neither a model file nor a known short name; short names: "
                     f"{', '.join(names) or '(none: no installed importer offers examples)'}"
                     + (f"; did you mean {close[0]!r}?" if close else ""))


def installed_targets() -> list[str]:
    """Every registered target that is usable here, aliases left out."""
    from hal_core.registry import get_registry

    return [t.name for t in get_registry().targets() if t.error is None
            and t.name not in ALIASES and _target_problem(t.name) is None]


def _target_problem(name: str) -> str | None:
    """Why target ``name`` cannot compile here (None: it can); unknown names raise."""
    from hal_core.registry import get_registry

    registry = get_registry()
    entry = registry.target(name)   # unknown: UsageError with the names and a did-you-mean
    try:
        return registry.unavailable(entry, "target")
    except HalError as exc:
        return str(exc)


def random_inputs(function: Any, seed: int) -> list[Any]:
    """Seeded random arguments for a tensor IR function."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for arg in function.args:
        shape, dtype = tuple(arg.type.shape), np.dtype(arg.type.numpy_dtype)
        if dtype.kind == "f":
            out.append(rng.standard_normal(shape).astype(dtype))
        elif dtype.kind == "b":
            out.append(rng.integers(0, 2, shape).astype(dtype))
        else:
            out.append(rng.integers(0, 4, shape).astype(dtype))
    return out


def compare(got: Sequence[Any], want: Sequence[Any]) -> tuple[float, float]:
    """(max abs error, max relative error) over the outputs; UsageError-free: mismatched
    counts or shapes raise HalError naming the output."""
    import numpy as np

    if len(got) != len(want):
        raise HalError(f"{len(got)} outputs, the reference has {len(want)}")
    worst_abs = worst_rel = 0.0
    for i, (g, w) in enumerate(zip(got, want)):
        g, w = np.asarray(g), np.asarray(w)
        if g.shape != w.shape:
            raise HalError(f"output {i} has shape {g.shape}, the reference {w.shape}")
        if g.size == 0:
            continue
        diff = float(np.max(np.abs(g.astype(np.float64) - w.astype(np.float64))))
        scale = float(np.max(np.abs(w.astype(np.float64))))
        worst_abs = max(worst_abs, diff)
        worst_rel = max(worst_rel, diff / scale if scale > 0 else (0.0 if diff == 0 else
                                                                    float("inf")))
    return worst_abs, worst_rel


def sweep(model: str, *, targets: Sequence[str] | None = None,
          drivers: Sequence[str] | None = None, function: str | None = None,
          weights: str = "auto", reference: str = "auto", seed: int = 0,
          repetitions: int = 10, warmup: int = 1, max_time: float = 2.0,
          importer: str | None = None, importer_options: Mapping[str, str] | None = None,
          target_options: Mapping[str, Mapping[str, str]] | None = None,
          probe_timeout: float = 30.0,
          progress: Callable[[str, CompileProgress], None] | None = None) -> Sweep:
    """Compile ``model`` for each of ``targets`` (default: every installed one), run it on
    every device of ``drivers`` (default: every registered one) and compare with a reference.

    ``weights``: ``"random"`` replaces splat weights by seeded random ones, ``"shipped"`` keeps
    them, ``"auto"`` replaces them when there are some. ``reference``: ``"auto"`` (the
    importer's reference runtime if installed, else the tensor IR's numpy evaluation) or
    ``"ir"``. ``progress(target, report)`` follows each compile (``target`` is ``""`` for the
    import). Timing: ``warmup`` calls, then up to ``repetitions`` calls, fewer once
    ``max_time`` seconds were spent (at least one).
    """
    from hal_core.compiler.pipeline import compile_ir, importer_name, load_source, parse_target_list

    if weights not in WEIGHTS:
        raise UsageError(f"weights must be one of {', '.join(WEIGHTS)}, got {weights!r}")
    if reference not in REFERENCES:
        raise UsageError(f"reference must be one of {', '.join(REFERENCES)}, got {reference!r}")
    if repetitions < 1 or warmup < 0 or max_time < 0:
        raise UsageError(f"need repetitions >= 1, warmup >= 0 and max_time >= 0; got "
                         f"{repetitions}, {warmup}, {max_time}")
    path, display = find_model(model)
    target_names = parse_target_list(targets) if targets is not None else installed_targets()
    problems = {t: _target_problem(t) for t in target_names}  # unknown names fail here
    stray = sorted(set(target_options or {}) - set(target_names))
    if stray:
        raise UsageError(f"target options given for {', '.join(stray)}, which is not among "
                         f"the targets tried ({', '.join(target_names)})")
    iname = importer_name(path, importer)
    tools = importer_tools(iname) if iname else None
    source, weights_text = _with_weights(path, weights, seed, iname, tools)

    t0 = time.perf_counter()
    _report(progress, "", CompileProgress("import", 0, 1))
    ir_module, name = load_source(source, iname if source is not path else importer,
                                  importer_options)
    _report(progress, "", CompileProgress("import", 1, 1))
    import_s = time.perf_counter() - t0
    name = os.path.splitext(display)[0] if name == "module" else name
    fn = _pick_function(ir_module, function)
    inputs = random_inputs(fn, seed)
    inputs_text = ", ".join("x".join([*map(str, a.type.shape), a.type.dtype])
                            for a in fn.args) or "none"

    want, reference_text = _reference(source, fn, inputs, reference, iname, tools)

    modules: dict[str, Any] = {}
    compile_rows: list[Row] = []
    compile_s: dict[str, float] = {}
    for target in target_names:
        problem = problems[target]
        if problem is not None:
            compile_rows.append(Row("", "", target, problem=f"target unavailable: {problem}",
                                    status="unavailable"))
            continue
        t0 = time.perf_counter()
        try:
            modules[target] = _compile_with_fallback(
                compile_ir, ir_module, target, target_options, name,
                None if progress is None else (lambda r, t=target: progress(t, r)))
        except UsageError:
            raise   # a wrong option: the command line's fault, not the target's
        except HalError as exc:
            compile_rows.append(Row("", "", target, problem=f"compile failed: {exc}",
                                    status="failed"))
            continue
        compile_s[target] = time.perf_counter() - t0

    rows = list(compile_rows)
    tried: set[str] = set()   # targets some device ran
    for device in _devices(drivers, probe_timeout):
        if isinstance(device, Row):
            rows.append(device)
            continue
        ran = False
        for target, module in modules.items():
            formats = {v.format for e in module.executables for v in e.variants}
            if device["formats"] is not None and not formats & set(device["formats"]):
                continue
            ran = True
            tried.add(target)
            rows.append(_measure(device, target, module, fn.name, inputs, want,
                                 compile_s[target], repetitions, warmup, max_time))
        if not ran:
            can = ", ".join(device["formats"] or ()) or "no formats"
            compiled = ", ".join(modules) or "none"
            rows.append(Row(device["driver"], device["uri"],
                            problem=f"runs none of the compiled targets ({compiled}): it "
                            f"prepares {can}", status="unavailable"))
    rows += [Row("", "", target, compile_s=compile_s[target], status="unavailable",
                 problem="compiled; no device of the drivers tried can run it")
             for target in modules if target not in tried]
    return Sweep(display, path, fn.name, weights_text, inputs_text + f", random (seed {seed})",
                 reference_text, import_s, tuple(rows))


def _with_weights(path: str, weights: str, seed: int, iname: str | None,
                  tools: Any) -> tuple[Any, str]:
    """(the source to import, what was done to its weights)."""
    if weights == "shipped":
        return path, "as in the file"
    if tools is None or not hasattr(tools, "random_weights"):
        if weights == "random":
            raise UsageError(f"random weights need an importer that can make them; importer "
                             f"{iname!r} cannot (drop --random-weights)")
        return path, "as in the file"
    data, replaced = tools.random_weights(path, seed)
    if replaced or weights == "random":
        return data, f"random (seed {seed}; {replaced} splat weights replaced)"
    return path, "as in the file (no splat weights to replace)"


def _reference(source: Any, fn: Any, inputs: list[Any], reference: str, iname: str | None,
               tools: Any) -> tuple[list[Any], str]:
    """(the reference outputs, what computed them): the importer's reference runtime when
    installed and not refused, else the numpy evaluation of the tensor IR."""
    import numpy as np

    why = "asked for" if reference == "ir" else \
        f"importer {iname!r} has no reference runtime here" if iname else "no importer"
    if reference == "auto" and tools is not None and hasattr(tools, "reference"):
        runtime = tools.reference_runtime() if hasattr(tools, "reference_runtime") else None
        if runtime is not None:
            try:
                return [np.asarray(y) for y in tools.reference(source, inputs)], runtime
            except Exception as exc:  # noqa: BLE001 - fall back, and say why
                why = f"{runtime} failed: {type(exc).__name__}: {' '.join(str(exc).split())}"
                log.warning("reference runtime %s failed, using the IR's evaluation: %s",
                            runtime, exc)
    from hal_core.ir import evaluate

    return ([np.asarray(y) for y in evaluate(fn, *inputs)],
            f"numpy evaluation of the imported tensor IR ({why})")


def _report(progress: Callable[[str, CompileProgress], None] | None, target: str,
            report: CompileProgress) -> None:
    if progress is not None:
        progress(target, report)


def _pick_function(module: Any, requested: str | None) -> Any:
    names = [f.name for f in module.functions]
    if requested is not None:
        for f in module.functions:
            if f.name == requested:
                return f
        raise UsageError(f"the model has no function {requested!r}; it has {', '.join(names)}")
    if len(names) == 1 or "main" in names:
        return module.functions[names.index("main") if "main" in names else 0]
    raise UsageError(f"the model has several functions ({', '.join(names)}); choose one with "
                     "--function=NAME")


def _compile_with_fallback(compile_ir: Any, ir_module: Any, target: str,
                           target_options: Mapping[str, Mapping[str, str]] | None, name: str,
                           progress: Any) -> Any:
    """The module for ``target``; vmvx serves the kernels it declines (when installed)."""
    options = {target: dict(target_options[target])} if target_options and \
        target in target_options else None
    try:
        return compile_ir(ir_module, [target], target_options=options, name=name,
                          progress=progress)
    except UnsupportedKernelError:
        if target == "vmvx" or "vmvx" not in installed_targets():
            raise
    log.info("target %s declined kernels; compiling with vmvx beside it", target)
    return compile_ir(ir_module, [target, "vmvx"], target_options=options, name=name,
                      progress=progress)


def _devices(drivers: Sequence[str] | None, timeout: float) -> list[Any]:
    """In the drivers' order: a dict (driver, uri, formats) per device, or a Row saying why a
    driver has none."""
    from hal_core.registry import get_registry

    registry = get_registry()
    wanted = [e.name for e in registry.drivers()] if drivers is None else \
        list(dict.fromkeys(drivers))
    found: dict[str, list[Any]] = {}
    for n in wanted:
        try:
            registry.driver(n)
        except HalError as exc:   # failed to load, not installed (or a typo: the row says)
            word = "not installed" if isinstance(exc, UsageError) else "failed to load"
            found[n] = [Row(n, n, problem=f"{word}: {exc}", status="unavailable")]
    names = [n for n in wanted if n not in found]
    results = registry.probe_many(names, timeout=timeout, what="dump") if names else {}
    for n in names:
        r = results[n]
        if r.status != "available":
            found[n] = [Row(n, n, problem=f"driver {r.describe()}", status="unavailable")]
        elif not r.devices:
            found[n] = [Row(n, n, problem="driver has no devices", status="unavailable")]
        else:
            found[n] = [{"driver": n, "uri": d["uri"], "formats": d.get("formats")}
                        for d in r.devices]
    return [item for n in wanted for item in found[n]]


#: Seconds of quiet before a row's calls are timed (see :func:`_measure`).
SETTLE_S = 0.25


def _measure(device: Mapping[str, Any], target: str, module: Any, function: str,
             inputs: list[Any], want: list[Any], compile_s: float, repetitions: int,
             warmup: int, max_time: float) -> Row:
    from hal_core.runtime import load_module

    row = Row(device["driver"], device["uri"], target, compile_s=compile_s)
    try:
        with load_module(module, device["uri"]) as loaded:
            chosen = list(dict.fromkeys(v.target_backend for v in loaded.variants))
            fn = loaded[function]
            # Threads that an earlier row or the reference left spinning (OpenBLAS's under
            # vmvx, onnxruntime's: about 0.1 s after their last call) would share the cores
            # with this row's calls: local-task's llvm-cpu SqueezeNet took 6.3 ms right after
            # the vmvx row and 2.3 ms after this pause.
            time.sleep(SETTLE_S)
            for _ in range(warmup):
                fn(*inputs)
            times: list[float] = []
            spent = time.perf_counter()
            while len(times) < repetitions and (not times or
                                                 time.perf_counter() - spent < max_time):
                t0 = time.perf_counter()
                got = fn(*inputs)
                times.append(time.perf_counter() - t0)
    except Exception as exc:  # noqa: BLE001 - a failing driver is a row, not the end
        return replace(row, problem=f"{type(exc).__name__}: {exc}", status="failed")
    got = got if isinstance(got, tuple) else (got,)
    try:
        abs_err, rel_err = compare(got, want)
    except HalError as exc:
        return replace(row, chosen="+".join(chosen), problem=f"outputs differ: {exc}",
                        status="failed")
    return replace(row, chosen="+".join(chosen), latency_s=statistics.median(times),
                    calls=len(times), max_abs_error=abs_err, max_rel_error=rel_err)


__all__ = ["Row", "Sweep", "compare", "find_model", "installed_targets", "random_inputs",
           "sweep"]
