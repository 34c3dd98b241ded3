"""The compiler pipeline: tensor IR -> kernel IR -> target variants -> a hal module.

Stages (``dump_ir`` writes each one's result into a directory, numbered in order):

1. verify the tensor IR;
2. fold constants and drop dead ops (:mod:`.passes.folding`);
3. fusion (:mod:`.passes.fusion`) and dispatch formation (:mod:`.passes.dispatch`): one kernel
   IR kernel per dispatch; identical kernels share one entry point;
4. buffer planning (:mod:`.passes.buffers`) and the host program (:mod:`.passes.host`);
5. each kernel becomes its own :class:`KernelExecutable` (one entry point), and every
   requested target backend compiles it into one or more variants, or declines it with
   :class:`~hal_core.errors.UnsupportedKernelError`; a kernel fails the compile only when
   every target declined it. New targets can so land kernel by kernel beside vmvx.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hal_core.compiler import kernel_ir as K
from hal_core.compiler.progress import CompileProgress, ProgressCallback, kernel_counter
from hal_core.errors import CompileError, HalError, UnsupportedKernelError, UsageError
from hal_core.module import model as M

log = logging.getLogger(__name__)

EXECUTION_MODELS = {"async": M.ExecutionModel.ASYNC, "inline": M.ExecutionModel.INLINE}


def parse_execution_model(value: str | M.ExecutionModel) -> M.ExecutionModel:
    if isinstance(value, M.ExecutionModel):
        return value
    model = EXECUTION_MODELS.get(str(value).strip().lower())
    if model is None:
        raise UsageError(f"unknown execution model {value!r}; expected one of "
                         f"{', '.join(EXECUTION_MODELS)}")
    return model


def parse_target_list(targets: str | Iterable[str]) -> list[str]:
    """``"vmvx,llvm-cpu"`` or a list of names -> unique names in order."""
    items = targets.split(",") if isinstance(targets, str) else list(targets)
    names: list[str] = []
    for t in items:
        if not isinstance(t, str):
            raise UsageError(f"target backend names must be strings, found {t!r}")
        t = t.strip()
        if t and t not in names:
            names.append(t)
    if not names:
        raise UsageError("no target backend given; pass e.g. --target-backends=vmvx "
                         "(`hal targets list` shows the installed ones)")
    return names


class _Dumper:
    def __init__(self, directory: str | os.PathLike[str] | None) -> None:
        self.dir = None if directory is None else Path(directory)
        self.n = 0
        if self.dir is not None:
            try:
                self.dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise UsageError(f"cannot create the --dump-ir directory {str(self.dir)!r}: "
                                 f"{exc.strerror or exc}") from None

    def __call__(self, stage: str, text: Any) -> None:
        if self.dir is None:
            return
        path = self.dir / f"{self.n:02d}-{stage}"
        self.n += 1
        content = text() if callable(text) else text
        try:
            path.write_text(content if content.endswith("\n") else content + "\n",
                            encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None


def compile_ir(module: Any, target_backends: str | Sequence[str] = ("vmvx",), *,
               execution_model: str | M.ExecutionModel = "async",
               target_options: Mapping[str, Mapping[str, str]] | None = None,
               dump_ir: str | os.PathLike[str] | None = None,
               name: str = "module", timings: dict[str, float] | None = None,
               progress: ProgressCallback | None = None) -> M.Module:
    """Compile a tensor IR :class:`hal_core.ir.Module` into a hal module.

    ``timings``, when given, receives the seconds spent in each phase (``hal compile
    --timings``), added to any already there. ``progress``, when given, is called with a
    :class:`~hal_core.compiler.progress.CompileProgress` as phases start and end and as each
    target finishes kernels.
    """
    from hal_core.compiler.passes.buffers import ConstantPool, plan_buffers
    from hal_core.compiler.passes.dispatch import form_dispatches
    from hal_core.compiler.passes.folding import fold_constants
    from hal_core.compiler.passes.fusion import plan_fusion
    from hal_core.compiler.passes.host import emit_program
    from hal_core.compiler.target import TargetOptions
    from hal_core.ir import Module, print_module, verify_module
    from hal_core.registry import get_registry

    if not isinstance(module, Module):
        raise UsageError(f"compile_ir takes a hal_core.ir Module, found {type(module).__name__};"
                         " use hal_core.compile for files, text and builders")
    model = parse_execution_model(execution_model)
    names = parse_target_list(target_backends)
    options = dict(target_options or {})
    stray = sorted(set(options) - set(names))
    if stray:
        raise UsageError(f"target options given for {', '.join(stray)}, which is not among "
                         f"the requested target backends ({', '.join(names)})")
    registry = get_registry()
    backends = [(n, registry.create_target(n)) for n in names]  # unknown: did-you-mean
    dump = _Dumper(dump_ir)

    verify_module(module)
    dump("input.mlir", lambda: print_module(module))
    clock = _Clock(timings, progress)
    with clock("constant folding"):
        module = _run("constant folding", fold_constants, module)
    dump("fold.mlir", lambda: print_module(module))

    from hal_core.compiler.dump import format_fusion, format_host, format_kernels
    from hal_core.ir.verifier import op_context

    kernels: list[K.Kernel] = []
    index_of: dict[K.Kernel, int] = {}
    origins: dict[str, list[str]] = {}  # kernel name -> the tensor-IR ops it computes
    formed = []
    for fn in module.functions:
        with clock("fusion"):
            plan = _run("fusion", plan_fusion, fn)
        with clock("dispatch formation"):
            fd = form_dispatches(fn, plan)
        entries = []
        ops_by_result = {op.result.name: op for op in fn.body}
        for step in fd.steps:
            key = dataclasses.replace(step.kernel, name="")
            if key not in index_of:
                index_of[key] = len(kernels)
                kernels.append(step.kernel)
            entries.append(index_of[key])
            origins.setdefault(kernels[index_of[key]].name, []).extend(
                op_context(fn, ops_by_result[r]) for r in step.ops)
        formed.append((fn, plan, fd, [(e, 0) for e in entries]))
    dump("fusion.txt", lambda: format_fusion([(fn, plan) for fn, plan, _, _ in formed]))
    kernel_executables = [K.KernelExecutable(k.name, (k,)) for k in kernels]
    dump("kernels.txt", lambda: "\n".join(format_kernels(e) for e in kernel_executables))
    for k in kernels:
        K.validate(k)

    # Targets compile before buffer planning: an entry point may ask for scratch memory.
    topts = {tname: TargetOptions(options=dict(options.get(tname, {})), execution_model=model)
             for tname, _ in backends}
    counted: set[str] = set()   # targets whose precompile reported their kernels' progress
    for tname, backend in backends:
        # A backend may compile every kernel up front (in parallel processes, say); compile()
        # below then answers from what it made. Optional; errors surface in compile().
        precompile = getattr(backend, "precompile", None)   # absent on plain objects
        if precompile is not None and kernel_executables:
            report = kernel_counter(progress, f"target {tname}")
            if report is not None and _takes_keyword(precompile, "progress"):
                def counting(done: int, total: int, tname: str = tname,
                             report: Any = report) -> None:
                    counted.add(tname)   # it reports: the loop below need not
                    report(done, total)

                precompile = functools.partial(precompile, progress=counting)
            with clock(f"target {tname}", report=False):
                _run(f"target backend {tname!r} precompile", precompile, kernel_executables,
                     topts[tname])
    executables = []
    per_target: dict[str, list[str]] = {tname: [] for tname, _ in backends}
    for i, kexe in enumerate(kernel_executables):
        variants: list[M.Variant] = []
        declined: list[str] = []
        for tname, backend in backends:
            try:
                with clock(f"target {tname}", report=False):
                    made = _compile_variants(tname, backend, kexe, topts[tname], origins)
                if progress is not None and tname not in counted:
                    progress(CompileProgress(f"target {tname}", i + 1, len(kernel_executables)))
            except UnsupportedKernelError as exc:
                log.info("target %s declined kernel %s: %s", tname, kexe.name, exc)
                declined.append(f"target {tname!r}: {exc}")
                per_target[tname].append(f"executable {kexe.name}: declined: {exc}")
                continue
            variants += made
            per_target[tname] += [f"executable {kexe.name}: " + _format_variant(v)
                                  for v in made]
        if not variants:
            computes = "; ".join(dict.fromkeys(origins.get(kexe.name, ())))
            hint = ",".join(names if "vmvx" in names else [*names, "vmvx"])
            raise UnsupportedKernelError(
                f"kernel {kexe.name!r} has no variant: every requested target backend "
                f"declined it ({'; '.join(declined)})"
                + (f" [the kernel computes: {computes}]" if computes else "")
                + f"; add a target that handles it, e.g. --target-backends={hint}")
        executables.append(M.Executable(kexe.name, tuple(variants)))
    for tname, lines in per_target.items():
        dump(f"variant-{tname}.txt", "\n".join(lines) or "(no kernels)")
    scratch, executables = _unify_scratch(executables)

    pool = ConstantPool()
    functions = []
    bplans = []
    for fn, _, fd, entries in formed:
        with clock("buffer planning"):
            bplan = _run("buffer planning", plan_buffers, fd, pool,
                         [scratch[e] for e, _ in entries])
        bplans.append((fd, bplan))
        with clock("host program emission"):
            program = _run("host program emission", emit_program, fd, bplan, entries)
        functions.append(M.Function(
            fn.name, tuple(M.TensorType(a.type.shape, a.type.numpy_dtype) for a in fn.args),
            tuple(M.TensorType(v.type.shape, v.type.numpy_dtype) for v in fn.results),
            program, bplan.transient_size))
    dump("host.txt", lambda: format_host(functions, bplans))

    constants = tuple(M.Constant(n, d, *splat)
                      for n, d, splat in zip(pool.names, pool.data, pool.splats))
    return M.Module(name, tuple(functions), tuple(executables), constants,
                    execution_model=model)


class _Clock:
    """``with clock(phase):`` adds the block's wall time to ``timings[phase]`` and, unless
    ``report=False`` (kernel-counted phases), reports the phase's start and end to
    ``progress``."""

    def __init__(self, timings: dict[str, float] | None,
                 progress: ProgressCallback | None = None) -> None:
        self.timings = timings
        self.progress = progress

    @contextlib.contextmanager
    def __call__(self, phase: str, report: bool = True):
        report = report and self.progress is not None
        if report:
            self.progress(CompileProgress(phase, 0, 1))
        t0 = time.perf_counter()
        try:
            yield
        finally:
            if self.timings is not None:
                self.timings[phase] = self.timings.get(phase, 0.0) + time.perf_counter() - t0
        if report:
            self.progress(CompileProgress(phase, 1, 1))


def _takes_keyword(fn: Any, name: str) -> bool:
    import inspect

    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == name and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
               or p.kind is p.VAR_KEYWORD for p in params)


def _run(what: str, fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except HalError:
        raise
    except Exception as exc:
        raise CompileError(f"internal compiler error in {what}: {type(exc).__name__}: {exc}; "
                           "please report it with the input program") from exc


def _compile_variants(tname: str, backend: Any, executable: K.KernelExecutable,
                      options: Any, origins: Mapping[str, list[str]]) -> list[M.Variant]:
    """The variants ``backend`` makes of ``executable`` (one, or several in preference order);
    UnsupportedKernelError passes through for the caller to fall back on other targets."""
    try:
        result = backend.compile(executable, options)
    except UnsupportedKernelError:
        raise
    except CompileError as exc:
        # The target names a kernel; say which ops of the user's program it came from.
        hits = [o for name, ops in origins.items() if name in str(exc) for o in ops]
        if not hits:
            raise
        raise CompileError(f"target backend {tname!r}: {exc} [the kernel computes: "
                           f"{'; '.join(dict.fromkeys(hits))}]") from exc
    except HalError:
        raise
    except Exception as exc:
        raise CompileError(f"target backend {tname!r} failed: {type(exc).__name__}: {exc}"
                           ) from exc
    variants = list(result) if isinstance(result, (list, tuple)) else [result]
    if not variants:
        raise CompileError(f"target backend {tname!r} returned no variant for "
                           f"{executable.name!r}; return a Variant (or a list of them), or "
                           "raise UnsupportedKernelError naming the kernel")
    for variant in variants:
        _check_variant(tname, executable, variant)
    return variants


def _check_variant(tname: str, executable: K.KernelExecutable, variant: Any) -> None:
    from hal_core.hal.requirements import parse_requirement

    if not isinstance(variant, M.Variant) or len(M.dispatchable_entry_points(variant)) != len(
            executable.kernels):
        got = len(M.dispatchable_entry_points(variant)) if isinstance(variant, M.Variant) \
            else variant
        raise CompileError(f"target backend {tname!r} returned {got!r} entry points for "
                           f"{len(executable.kernels)} kernels; it must return Variants "
                           "with one entry point per kernel, in order (then any load-time "
                           "packing entry points)")
    for feature in variant.features:
        try:
            parse_requirement(feature)
        except UsageError as exc:
            raise CompileError(f"target backend {tname!r}: {exc}") from None
    for i, (kernel, ep) in enumerate(zip(executable.kernels, variant.entry_points)):
        want = K.binding_count(kernel) + (1 if ep.scratch_size else 0)
        if ep.binding_count != want or ep.constant_count != 0:
            raise CompileError(f"target backend {tname!r}: entry point {i} ({ep.name!r}) "
                               f"declares {ep.binding_count} bindings and {ep.constant_count}"
                               f" push constants; kernel {kernel.name!r} has {want} bindings "
                               "(its own, plus one for scratch if it asks for scratch) and no "
                               "push constants")
        consts = K.constant_bindings(kernel)
        for p in ep.constant_packs:
            if p.binding not in consts:
                raise CompileError(f"target backend {tname!r}: entry point {i} ({ep.name!r}) "
                                   f"packs binding {p.binding}, which is not a module constant "
                                   f"of kernel {kernel.name!r} (constant bindings: "
                                   f"{sorted(consts) or 'none'})")


def _unify_scratch(executables: list[M.Executable]) -> tuple[list[int], list[M.Executable]]:
    """Scratch bytes of each (one-kernel) executable's entry point, the most any variant asks,
    and the executables with that scratch binding counted in every variant, so that their
    entry points keep one layout (a variant that asked for none ignores the binding)."""
    scratch, out = [], []
    for exe in executables:
        need = max((v.entry_points[0].scratch_size for v in exe.variants), default=0)
        scratch.append(need)
        variants = []
        for v in exe.variants:
            ep = v.entry_points[0]
            if need and not ep.scratch_size:
                ep = dataclasses.replace(ep, binding_count=ep.binding_count + 1)
                v = dataclasses.replace(v, entry_points=(ep, *v.entry_points[1:]))
            variants.append(v)
        out.append(dataclasses.replace(exe, variants=tuple(variants)))
    return scratch, out


def _format_variant(v: M.Variant) -> str:
    lines = [(f"variant {v.target_backend} format={v.format} features={list(v.features)} "
              f"payload={len(v.payload)} bytes")]
    for i, ep in enumerate(v.entry_points):
        lines.append(f"  [{i}] {ep.name} workgroups={ep.workgroup_count} "
                     f"size={ep.workgroup_size} bindings={ep.binding_count} "
                     f"constants={ep.constant_count}"
                     + (f" scratch={ep.scratch_size}" if ep.scratch_size else "")
                     + "".join(f" pack(binding {p.binding} by [{p.entry_point}], "
                               f"{p.packed_size} bytes)" for p in ep.constant_packs))
    return "\n".join(lines)


# -- sources --------------------------------------------------------------------------------------

def importer_name(source: Any, importer: str | None = None) -> str | None:
    """The importer that :func:`load_source` runs for ``source`` (None: no importer runs,
    ``source`` already is tensor IR)."""
    from hal_core.ir import Builder, Function, Module

    if isinstance(source, (Module, Function, Builder)):
        return None
    if isinstance(source, (bytes, bytearray, memoryview)) or (
            isinstance(source, str) and ("\n" in source or "func.func" in source)):
        return importer or "text"
    if isinstance(source, (str, os.PathLike)):
        return _importer_for(Path(source)) if importer is None else importer
    raise UsageError(f"cannot compile a {type(source).__name__}; give a hal_core.ir Module, "
                     "Function or Builder, a file path, or IR text")


def load_source(source: Any, importer: str | None = None,
                importer_options: Mapping[str, str] | None = None) -> tuple[Any, str]:
    """(tensor IR module, module name) from a Module, Function, Builder, path, text or bytes;
    ``importer_options`` go to the importer (see :class:`~hal_core.descriptors.ImporterInfo`)."""
    from hal_core.ir import Builder, Function, Module

    name = importer_name(source, importer)
    if name is None and importer_options:
        raise UsageError(f"importer options ({', '.join(sorted(importer_options))}) were given, "
                         f"but a {type(source).__name__} is tensor IR already: no importer "
                         "runs; drop them or pass a model file")
    if isinstance(source, Module):
        return source, "module"
    if isinstance(source, Function):
        return Module((source,)), source.name
    if isinstance(source, Builder):
        return source.module(), "module"
    options = dict(importer_options or {})
    if isinstance(source, (bytes, bytearray, memoryview)) or (
            isinstance(source, str) and ("\n" in source or "func.func" in source)):
        data = source.encode("utf-8") if isinstance(source, str) else bytes(source)
        return _import(name, data, options), "module"
    path = Path(source)
    return _import(name, os.fspath(path), options), _module_name(path.stem)


def _module_name(stem: str) -> str:
    return "".join(c if c.isalnum() or c in "_-." else "_" for c in stem) or "module"


def _importer_for(path: Path) -> str:
    from hal_core.registry import get_registry

    suffix = path.suffix.lower()
    known = []
    for entry in get_registry().importers():
        if entry.error is None:
            known.extend(entry.info.extensions)
            if suffix in entry.info.extensions:
                return entry.name
    raise UsageError(f"no importer handles {str(path)!r} (extension {suffix or 'none'!r}); "
                     f"known extensions: {', '.join(sorted(set(known))) or '(none)'}; "
                     "pass an importer by name (hal compile --importer=NAME)")


def _import(name: str, source: Any, options: dict[str, str]) -> Any:
    from hal_core.descriptors import resolve
    from hal_core.ir import Module
    from hal_core.registry import get_registry

    entry = get_registry().importer(name)
    where = f"importer '{name}' from {entry.plugin.describe()}"
    reason = get_registry().unavailable(entry, "importer")
    if reason:
        raise CompileError(f"{where} is unavailable here: {reason}")
    try:
        factory = resolve(entry.info.factory)
        if _takes_options(factory):
            module = factory(source, options)
        elif options:
            raise UsageError(f"{where} takes no options, got "
                             f"{', '.join(f'--{name}-{k}' for k in sorted(options))}")
        else:
            module = factory(source)
    except HalError:
        raise
    except Exception as exc:
        raise CompileError(f"{where} failed: {type(exc).__name__}: {exc}") from exc
    if not isinstance(module, Module):
        raise CompileError(f"{where} returned {type(module).__name__}, expected a "
                           "hal_core.ir Module")
    return module


def _takes_options(factory: Any) -> bool:
    """Whether an importer factory accepts ``(source, options)``."""
    import inspect

    try:
        params = list(inspect.signature(factory).parameters.values())
    except (TypeError, ValueError):
        return False
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2


def compile(source: Any, target_backends: str | Sequence[str] = ("vmvx",),
            execution_model: str | M.ExecutionModel = "async",
            dump_ir: str | os.PathLike[str] | None = None,
            target_options: Mapping[str, Mapping[str, str]] | None = None,
            output: str | os.PathLike[str] | None = None, *,
            importer: str | None = None, name: str | None = None,
            importer_options: Mapping[str, str] | None = None,
            timings: dict[str, float] | None = None,
            progress: ProgressCallback | None = None) -> M.Module:
    """Compile ``source`` for ``target_backends``; write it to ``output`` when given.

    ``source``: a :class:`hal_core.ir.Module` / ``Function`` / ``Builder``, a file path (the
    importer is picked by extension unless ``importer`` names one), IR text or bytes.
    ``target_options`` maps a target name to its options (see
    :class:`~hal_core.compiler.target.TargetOptions`); ``importer_options`` are the importer's
    (see :class:`~hal_core.descriptors.ImporterInfo`).
    ``timings`` receives seconds per phase and ``progress`` progress reports (see
    :func:`compile_ir`).
    """
    clock = _Clock(timings, progress)
    with clock("import"):
        ir_module, default_name = load_source(source, importer, importer_options)
    if name is None:
        name = _module_name(Path(output).stem) if output is not None and \
            default_name == "module" else default_name
    module = compile_ir(ir_module, target_backends, execution_model=execution_model,
                        target_options=target_options, dump_ir=dump_ir, name=name,
                        timings=timings, progress=progress)
    if output is not None:
        from hal_core.module.writer import write_module

        try:
            with clock("write module"):
                write_module(module, output)
        except OSError as exc:
            raise UsageError(f"cannot write the module to {os.fspath(output)!r}: "
                             f"{exc.strerror or exc}") from None
    return module
