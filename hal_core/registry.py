"""The plugin registry: discover plugins, load each in isolation, record provenance, answer lookups.

Plugins come from three places, in this order:

* :data:`BUILTIN_PLUGINS`, modules inside hal_core that are always registered;
* the entry-point group ``hal.plugins`` of installed distributions (off with
  ``HAL_PLUGINS_AUTOLOAD=0``);
* ``HAL_EXTERNAL_DRIVERS``: comma-separated module names or paths to ``.py`` files.

``HAL_DISABLE_PLUGINS=a,b`` (and ``hal --disable-plugin``) skips plugins by entry-point name,
distribution name or external spec. ``HAL_STRICT_PLUGINS=1`` turns any plugin failure into a
:class:`~hal_core.errors.PluginError`.

Every plugin is imported, version-checked and has its hooks called inside its own ``try``: a
failure marks that plugin failed (exception type, message, file:line) and the rest keep working.
Two plugins claiming one name is recorded as a conflict naming both; the name then resolves to
neither.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import importlib
import importlib.util
import logging
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from hal_core.descriptors import DriverInfo, ImporterInfo, LoaderInfo, TargetInfo, resolve
from hal_core.errors import (
    CompileError,
    DeviceUnavailableError,
    HalError,
    PluginError,
    UsageError,
)

if TYPE_CHECKING:
    from hal_core._probe import ProbeResult

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "hal.plugins"
#: Modules inside hal_core registered as plugins in every registry (e.g. the text IR importer).
BUILTIN_PLUGINS: tuple[str, ...] = ("hal_core.builtin_plugin",)
DEFAULT_DEVICE = "local-task"

Source = Literal["builtin", "entry-point", "external"]
Status = Literal["loaded", "failed", "disabled", "incompatible"]


@dataclass(frozen=True)
class PluginRecord:
    """One plugin as discovered: where it came from and what happened when it was loaded."""

    name: str  # entry-point name, builtin module name, or the HAL_EXTERNAL_DRIVERS spec
    module: str
    distribution: str  # "external: <spec>" for external drivers
    version: str | None
    api_version: str | None
    source: Source
    status: Status
    error: str | None = None

    @property
    def provenance(self) -> str:
        """``dist==version`` (or ``external: spec``), as shown in listings."""
        if self.version:
            return f"{self.distribution}=={self.version}"
        return self.distribution

    def describe(self) -> str:
        return f"plugin '{self.name}' ({self.provenance})"


@dataclass(frozen=True)
class Registered:
    """A descriptor (DriverInfo, TargetInfo, LoaderInfo, ImporterInfo) and the plugin behind it.

    ``error`` is set when the name is unusable: another plugin claims the same name.
    """

    info: Any
    plugin: PluginRecord
    error: str | None = None

    @property
    def name(self) -> str:
        return self.info.name


# kind -> (hook name, descriptor type, word used in messages)
_KINDS: dict[str, tuple[str, type, str]] = {
    "drivers": ("hal_register_drivers", DriverInfo, "driver"),
    "targets": ("hal_register_targets", TargetInfo, "target backend"),
    "loaders": ("hal_register_executable_loaders", LoaderInfo, "executable loader format"),
    "importers": ("hal_register_importers", ImporterInfo, "importer"),
}


def _env_list(name: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() not in ("0", "false", "no", "off")


def describe_exception(exc: BaseException) -> str:
    """``Type: message (at file:line)``, where the line is the innermost non-frozen frame."""
    where = None
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f"{exc.filename}:{exc.lineno}"
    else:
        for frame in reversed(traceback.extract_tb(exc.__traceback__)):
            if not frame.filename.startswith("<frozen"):
                where = f"{frame.filename}:{frame.lineno}"
                break
    text = f"{type(exc).__name__}: {exc}"
    return f"{text} (at {where})" if where else text


def _api_problem(declared: Any, core: str) -> str | None:
    """None when ``declared`` is compatible with the core's ``major.minor``, else why not."""
    if declared is None:
        return "does not declare HAL_PLUGIN_API_VERSION"
    try:
        major, minor = (int(part) for part in str(declared).split("."))
        core_major, core_minor = (int(part) for part in core.split("."))
    except ValueError:
        return f"declares HAL_PLUGIN_API_VERSION={declared!r}, expected 'major.minor'"
    if major != core_major or minor > core_minor:
        return f"was written for plugin API {declared}, this hal-core provides API {core}"
    return None


class Registry:
    """Plugins and what they register. Discovery happens once, on first use."""

    def __init__(self, *, autoload: bool | None = None, external: list[str] | None = None,
                 disabled: list[str] | None = None, strict: bool | None = None,
                 builtins: tuple[str, ...] | None = None) -> None:
        self.autoload = _env_flag("HAL_PLUGINS_AUTOLOAD", True) if autoload is None else autoload
        self.external = _env_list("HAL_EXTERNAL_DRIVERS") if external is None else list(external)
        self.disabled = set(_env_list("HAL_DISABLE_PLUGINS") if disabled is None else disabled)
        self.strict = _env_flag("HAL_STRICT_PLUGINS", False) if strict is None else strict
        self.builtins = BUILTIN_PLUGINS if builtins is None else builtins
        self._records: list[PluginRecord] | None = None
        self._entries: dict[str, list[Registered]] = {}
        self._default_checked: dict[str, ProbeResult] = {}  # HAL_DEFAULT_DEVICE entry -> child

    # -- discovery ---------------------------------------------------------------------------

    def _discover(self) -> None:
        if self._records is not None:
            return
        import pluggy

        from hal_core import hookspecs

        self._pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self._pm.add_hookspecs(hookspecs)
        self._core_api = hookspecs.HAL_PLUGIN_API_VERSION
        self._records = []
        self._entries = {kind: [] for kind in _KINDS}
        self._failures: list[str] = []
        for name in self.builtins:
            from hal_core import __version__

            self._add(PluginRecord(name, name, "hal-core", __version__, None, "builtin", "loaded"),
                      lambda name=name: importlib.import_module(name))
        if self.autoload:
            self._discover_entry_points()
        seen: set[str] = set()
        for spec in self.external:
            # `mydrv.py,./mydrv.py` names one file: load it once rather than clash with itself.
            key = os.path.realpath(spec) if _is_path_spec(spec) else spec
            if key in seen:
                log.debug("HAL_EXTERNAL_DRIVERS names %s twice; loaded once", spec)
                continue
            seen.add(key)
            self._discover_external(spec)
        self._collect()
        if self.strict and self._failures:
            raise PluginError("HAL_STRICT_PLUGINS=1 and plugins failed: " +
                              "; ".join(self._failures))

    def _discover_entry_points(self) -> None:
        import importlib_metadata

        for ep in importlib_metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist_name, version = _name_and_version(getattr(ep, "dist", None))
            module = ep.value.partition(":")[0].strip()
            record = PluginRecord(ep.name, module, dist_name, version, None, "entry-point",
                                  "loaded")
            self._add(record, ep.load)

    def _discover_external(self, spec: str) -> None:
        is_path = _is_path_spec(spec)
        if is_path:
            path = os.path.realpath(spec)
            stem = os.path.splitext(os.path.basename(path))[0]
            digest = hashlib.sha1(path.encode()).hexdigest()[:8]
            module = f"_hal_external_{''.join(c if c.isalnum() else '_' for c in stem)}_{digest}"
        else:
            module = spec
        record = PluginRecord(spec, module, f"external: {spec}", None, None, "external", "loaded")
        self._add(record, (lambda: _load_file(module, path)) if is_path
                  else (lambda: importlib.import_module(spec)))

    def _add(self, record: PluginRecord, load: Callable[[], Any]) -> None:
        if {record.name, record.module, record.distribution} & self.disabled:
            self._records.append(dataclasses.replace(record, status="disabled"))
            return
        try:
            plugin = load()
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - isolation is the point
            self._fail(record, "failed", f"failed to import: {describe_exception(exc)}")
            return
        declared = getattr(plugin, "HAL_PLUGIN_API_VERSION", None)
        record = dataclasses.replace(record, api_version=None if declared is None
                                     else str(declared))
        problem = _api_problem(declared, self._core_api)
        if problem:
            self._fail(record, "incompatible", f"{problem}; install a version of "
                       f"{record.distribution} built for hal plugin API {self._core_api}")
            return
        key = f"{len(self._records)}:{record.name}"
        same = self._pm.get_name(plugin)
        if same is not None:  # e.g. installed and also named in HAL_EXTERNAL_DRIVERS
            first = self._records[int(same.split(":", 1)[0])]
            self._fail(record, "failed", f"is the same module as {first.describe()}, which is "
                       "already loaded; drop one of the two")
            return
        try:
            self._pm.register(plugin, name=key)
        except Exception as exc:  # noqa: BLE001 - pluggy validation: misspelt hook, bad args
            self._fail(record, "failed", f"rejected by pluggy: {describe_exception(exc)}")
            return
        mistakes = self._hook_mistakes(plugin)
        if mistakes:
            record = dataclasses.replace(record, error="; ".join(mistakes))
            self._failures.extend(f"{record.describe()} {m}" for m in mistakes)
            for m in mistakes:
                log.warning("%s %s", record.describe(), m)
        self._records.append(record)

    def _hook_mistakes(self, plugin: Any) -> list[str]:
        """Hook functions that register nothing: a misspelt name, or no ``@hookimpl``.

        pluggy's ``check_pending()`` finds the first; it raises for the whole manager, so
        the same test runs here per plugin (a hook caller without a spec) to warn about each
        and keep the plugin's good hooks working.
        """
        import difflib

        from hal_core import hookspecs

        hooks = sorted(n for n in dir(hookspecs) if n.startswith("hal_register"))
        problems = []
        for caller in self._pm.get_hookcallers(plugin) or ():
            if not caller.has_spec():
                close = difflib.get_close_matches(caller.name, hooks, n=1)
                problems.append(f"implements {caller.name}, which is not a hal hook"
                                + (f"; did you mean {close[0]}?" if close else
                                   f" (the hooks are {', '.join(hooks)})"))
        marked = {c.name for c in self._pm.get_hookcallers(plugin) or ()}
        for name in sorted(vars(plugin) if hasattr(plugin, "__dict__") else ()):
            obj = getattr(plugin, name, None)
            if (name.startswith("hal_register") and name not in marked and callable(obj)
                    and getattr(obj, "__module__", None) == getattr(plugin, "__name__", None)):
                problems.append(f"defines {name} without @hookimpl, so it registers nothing; "
                                f"decorate it with hal_core.hookspecs.hookimpl")
        return problems

    def _fail(self, record: PluginRecord, status: Status, error: str, index: int | None = None
              ) -> None:
        record = dataclasses.replace(record, status=status, error=error)
        if index is None:
            self._records.append(record)
        else:
            self._records[index] = record
        self._failures.append(f"{record.describe()} {error}")
        log.warning("%s %s", record.describe(), error)

    def _collect(self) -> None:
        """Call every hook of every plugin, one plugin at a time, then find name clashes."""
        found: dict[int, dict[str, list[Any]]] = {}
        failed: set[int] = set()
        for kind, (hook_name, info_type, _) in _KINDS.items():
            for impl in getattr(self._pm.hook, hook_name).get_hookimpls():
                index = int(impl.plugin_name.split(":", 1)[0])
                if index in failed:
                    continue
                try:
                    result = impl.function()
                    items = list(result or ())
                    bad = [item for item in items if not isinstance(item, info_type)]
                    if bad:
                        raise TypeError(f"{hook_name} must return a list of "
                                        f"{info_type.__name__}, got {type(bad[0]).__name__}")
                except Exception as exc:  # noqa: BLE001 - one plugin's bug stays its own
                    failed.add(index)
                    self._fail(self._records[index], "failed",
                               f"raised in {hook_name}: {describe_exception(exc)}", index)
                    continue
                found.setdefault(index, {}).setdefault(kind, []).extend(items)
        for index, by_kind in sorted(found.items()):
            if index in failed:
                continue
            for kind, items in by_kind.items():
                self._entries[kind].extend(Registered(i, self._records[index]) for i in items)
        for kind in _KINDS:
            self._entries[kind] = self._mark_conflicts(kind, self._entries[kind])

    def _mark_conflicts(self, kind: str, entries: list[Registered]) -> list[Registered]:
        by_name: dict[str, list[Registered]] = {}
        for entry in entries:
            by_name.setdefault(entry.name, []).append(entry)
        word = _KINDS[kind][2]
        result = []
        for entry in entries:
            claimants = by_name[entry.name]
            if len(claimants) > 1:
                who = " and ".join(c.plugin.describe() for c in claimants)
                error = (f"{word} name '{entry.name}' is registered by {who}; uninstall or "
                         f"disable one of them (HAL_DISABLE_PLUGINS or --disable-plugin)")
                if entry is claimants[0]:
                    self._failures.append(error)
                    log.warning("%s", error)
                entry = dataclasses.replace(entry, error=error)
            result.append(entry)
        return result

    # -- listing -------------------------------------------------------------------------------

    def plugins(self) -> list[PluginRecord]:
        self._discover()
        return list(self._records)

    def problems(self) -> list[str]:
        """One line per plugin failure and per name conflict, for listings to report."""
        self._discover()
        return list(self._failures)

    def drivers(self) -> list[Registered]:
        self._discover()
        return list(self._entries["drivers"])

    def targets(self) -> list[Registered]:
        self._discover()
        return list(self._entries["targets"])

    def loaders(self) -> list[Registered]:
        self._discover()
        return list(self._entries["loaders"])

    def importers(self) -> list[Registered]:
        self._discover()
        return list(self._entries["importers"])

    # -- lookups -------------------------------------------------------------------------------

    def _lookup(self, kind: str, name: str) -> Registered:
        self._discover()
        entries = self._entries[kind]
        word = _KINDS[kind][2]
        for entry in entries:
            if entry.name == name:
                if entry.error:
                    raise PluginError(entry.error)
                return entry
        names = sorted({e.name for e in entries})
        message = f"unknown {word} '{name}'; available: {', '.join(names) or '(none)'}"
        close = difflib.get_close_matches(name, names, n=1)
        if close:
            message += f"; did you mean '{close[0]}'?"
        broken = [r.name for r in self._records if r.status in ("failed", "incompatible")]
        if broken:
            message += (f" (plugins that failed to load: {', '.join(broken)}; "
                        "see `hal plugins list`)")
        raise UsageError(message)

    def driver(self, name: str) -> Registered:
        return self._lookup("drivers", name)

    def target(self, name: str) -> Registered:
        return self._lookup("targets", name)

    def loader(self, format: str) -> Registered:
        return self._lookup("loaders", format)

    def importer(self, name: str) -> Registered:
        return self._lookup("importers", name)

    # -- factories -----------------------------------------------------------------------------

    def _call_factory(self, entry: Registered, word: str, *args: Any) -> Any:
        where = f"{word} '{entry.name}' from {entry.plugin.describe()}"
        try:
            factory = resolve(entry.info.factory)
        except Exception as exc:
            raise PluginError(f"{where}: cannot resolve factory '{entry.info.factory}': "
                              f"{describe_exception(exc)}") from exc
        try:
            return factory(*args)
        except DeviceUnavailableError as exc:
            raise DeviceUnavailableError(f"{where} is unavailable: {exc}") from exc
        except HalError:
            raise
        except Exception as exc:
            raise PluginError(f"{where}: factory '{entry.info.factory}' raised "
                              f"{describe_exception(exc)}") from exc

    def unavailable(self, entry: Registered, word: str) -> str | None:
        """Run ``entry``'s in-process probe: None when it can be used here, else the reason.

        A probe that raises is a PluginError naming the plugin.
        """
        if not entry.info.probe:
            return None
        try:
            reason = resolve(entry.info.probe)()
        except Exception as exc:
            raise PluginError(f"{word} '{entry.name}' from {entry.plugin.describe()}: probe "
                              f"'{entry.info.probe}' raised {describe_exception(exc)}") from exc
        return str(reason) if reason else None

    def create_driver(self, name: str) -> Any:
        """Create a driver by name, after its in-process probe says it can be used here."""
        entry = self.driver(name)
        reason = self.unavailable(entry, "driver")
        if reason:
            raise DeviceUnavailableError(f"driver '{name}' from {entry.plugin.describe()} is "
                                         f"unavailable: {reason}")
        return self._call_factory(entry, "driver", self)

    def create_device(self, spec: str | None = None) -> Any:
        """Create a device from a driver name or URI (``local-task://?workers=4``).

        With no spec, ``HAL_DEFAULT_DEVICE`` (an ordered comma list; the first that works wins)
        or ``local-task``. A named device is never replaced by another. When the list has
        several entries, each is first created in a child process (as listing probes drivers),
        so one that crashes natively (SIGSEGV, SIGILL) or hangs is skipped, not fatal.
        """
        if spec is not None:
            return self._create_named_device(spec)
        candidates = _env_list("HAL_DEFAULT_DEVICE") or [DEFAULT_DEVICE]
        if len(candidates) == 1:
            return self._create_named_device(candidates[0])
        reasons = []
        for candidate in candidates:
            try:
                checked = self._default_checked.get(candidate)
                if checked is None:
                    checked = self.probe_many([candidate], what="create")[candidate]
                    self._default_checked[candidate] = checked
                if checked.status != "available":
                    raise DeviceUnavailableError(checked.describe())
                return self._create_named_device(candidate)
            except HalError as exc:
                log.info("HAL_DEFAULT_DEVICE: skipping %s: %s", candidate, exc)
                reasons.append(f"{candidate}: {exc}")
        raise DeviceUnavailableError("no device in HAL_DEFAULT_DEVICE="
                                     f"{','.join(candidates)} could be created: "
                                     + "; ".join(reasons))

    def _create_named_device(self, spec: str) -> Any:
        driver_name, sep, _ = spec.partition("://")
        if not driver_name:
            raise UsageError(f"expected a driver name or URI like 'local-task://', got {spec!r}")
        driver = self.create_driver(driver_name)
        try:
            return driver.create_device(spec if sep else None)
        except HalError:
            raise
        except Exception as exc:
            entry = self.driver(driver_name)
            raise PluginError(f"driver '{driver_name}' from {entry.plugin.describe()} failed to "
                              f"create device {spec!r}: {describe_exception(exc)}") from exc

    def create_target(self, name: str) -> Any:
        """Create a target backend by name, after its probe says it can be used here."""
        entry = self.target(name)
        reason = self.unavailable(entry, "target backend")
        if reason:
            raise CompileError(f"target backend '{name}' from {entry.plugin.describe()} is "
                               f"unavailable here: {reason}")
        return self._call_factory(entry, "target backend")

    def create_loader(self, format: str) -> Any:
        return self._call_factory(self.loader(format), "executable loader")

    # -- probing in a subprocess ---------------------------------------------------------------

    def child_env(self) -> dict[str, str]:
        """The environment that makes a child process discover the same plugins as this one."""
        env = dict(os.environ)
        env["HAL_PLUGINS_AUTOLOAD"] = "1" if self.autoload else "0"
        env["HAL_EXTERNAL_DRIVERS"] = ",".join(self.external)
        env["HAL_DISABLE_PLUGINS"] = ",".join(sorted(self.disabled))
        env["HAL_STRICT_PLUGINS"] = "0"
        return env

    def probe(self, name: str, timeout: float = 10.0, what: str = "probe") -> ProbeResult:
        """Probe driver ``name`` in a subprocess; see :mod:`hal_core._probe`."""
        return self.probe_many([name], timeout, what)[name]

    def probe_many(self, names: list[str], timeout: float = 10.0, what: str = "probe"
                   ) -> dict[str, ProbeResult]:
        """Probe several drivers at once, each in its own subprocess, all within ``timeout``."""
        from hal_core import _probe

        for name in names:
            # Unknown or conflicting names fail here, in the parent ("create" takes URIs).
            self.driver(name.partition("://")[0] if what == "create" else name)
        return _probe.run_children(names, what, timeout, self.child_env())


def _name_and_version(dist: Any) -> tuple[str, str | None]:
    """Name and version from the METADATA header, without importing the email package.

    ``dist.name`` parses the whole file with ``email``, which costs more than the rest of
    ``hal drivers list`` together; the two headers sit at the top of the file.
    """
    if dist is None:
        return "<unknown distribution>", None
    found: dict[str, str] = {}
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    for line in text.splitlines():
        if not line.strip():
            break  # end of the header block
        key, sep, value = line.partition(":")
        if sep and key in ("Name", "Version") and key not in found:
            found[key] = value.strip()
    if "Name" in found and "Version" in found:
        return found["Name"], found["Version"]
    return dist.name, dist.version


def _is_path_spec(spec: str) -> bool:
    return spec.endswith(".py") or os.sep in spec


def _load_file(module_name: str, path: str) -> Any:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file: {path}")
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    # Registered before running so the file's own factory paths ("<__name__>:create") resolve.
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


_registry: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, configured from the environment on first use."""
    global _registry
    if _registry is None:
        _registry = Registry()
    return _registry


def reset_registry(replacement: Registry | None = None) -> None:
    """Forget the process-wide registry (tests), or install ``replacement`` (the CLI)."""
    global _registry
    _registry = replacement
