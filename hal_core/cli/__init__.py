"""The ``hal`` command.

Each subcommand lives in its own module under ``hal_core.cli`` and exposes
``add_parser(subparsers) -> None``, which adds its parser and sets ``func`` (a callable taking the
parsed ``argparse.Namespace`` and returning the exit status). To add a command, write the module
and add one line to :data:`COMMANDS`. Only the module of the command being run is imported, so a
command's heavy imports never slow down another; keep heavy imports inside functions anyway.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from hal_core.errors import HalError, UsageError

#: command name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "drivers": ("hal_core.cli.drivers", "list the HAL drivers that plugins provide"),
    "devices": ("hal_core.cli.devices", "list devices and dump their properties"),
    "targets": ("hal_core.cli.targets", "list the compiler target backends"),
    "plugins": ("hal_core.cli.plugins", "list the discovered plugins and their status"),
    "compile": ("hal_core.cli.compile", "compile a model to a .halm module for target backends"),
    "run": ("hal_core.cli.run", "call a function of a module and print its results"),
    "benchmark": ("hal_core.cli.benchmark", "time calls of a module function (median, p90)"),
    "dump": ("hal_core.cli.dump", "show the functions, executables and variants of a module"),
    "try": ("hal_core.cli.try_model",
            "compile a model for every target, run it on every driver, compare"),
}


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage and exiting, so errors stay one line."""

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _selected_command(argv: list[str]) -> str | None:
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--disable-plugin":
            skip = True
        elif not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return None


def _version_text() -> str:
    from hal_core import __version__
    from hal_core.hookspecs import HAL_PLUGIN_API_VERSION

    return f"hal {__version__} (hal-core, plugin API {HAL_PLUGIN_API_VERSION})"


def _accept_debug(parser: argparse.ArgumentParser) -> None:
    """Let ``--debug`` follow the subcommand too (``hal devices list --debug``); SUPPRESS keeps
    a subcommand from resetting a ``--debug`` given before it."""
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks and debug logging (also HAL_DEBUG=1)")
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):  # aliases share one parser
                _accept_debug(sub)


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    import importlib

    parser = _Parser(prog="hal", description="hal: a Python hardware abstraction layer, "
                     "after IREE's HAL.")
    parser.add_argument("--version", action="version", version=_version_text())
    parser.add_argument("--debug", action="store_true",
                        help="show tracebacks and debug logging (also HAL_DEBUG=1)")
    parser.add_argument("--disable-plugin", action="append", default=[], metavar="NAME",
                        help="do not load this plugin (entry-point name, distribution or "
                        "external spec); repeatable; adds to HAL_DISABLE_PLUGINS")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    selected = _selected_command(argv)
    for name, (module, help_text) in COMMANDS.items():
        if name == selected:
            importlib.import_module(module).add_parser(subparsers)
            _accept_debug(subparsers.choices[name])
        else:
            subparsers.add_parser(name, help=help_text)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("HAL_DEBUG", "") not in ("", "0")
    logging.basicConfig(level=logging.DEBUG if debug else logging.ERROR,
                        format="hal: %(levelname)s: %(name)s: %(message)s")
    parsed = False  # a refused command line gets no traceback: it would show argparse itself
    try:
        args = build_parser(argv).parse_args(argv)
        parsed = True
        if args.disable_plugin:
            from hal_core.registry import Registry, reset_registry

            disabled = [p.strip() for p in os.environ.get("HAL_DISABLE_PLUGINS", "").split(",")]
            reset_registry(Registry(disabled=[p for p in disabled if p] + args.disable_plugin))
        return int(args.func(args))
    except SystemExit as exc:  # argparse --help
        return exc.code if isinstance(exc.code, int) else 0
    except KeyboardInterrupt:
        sys.stderr.write("hal: interrupted\n")
        return 130
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away; nothing left to say.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # noqa: BLE001 - the CLI turns every error into one line
        if debug and parsed:
            import traceback

            traceback.print_exc()
        first_line = " ".join(str(exc).split()) or type(exc).__name__
        if isinstance(exc, UsageError):
            sys.stderr.write(f"hal: error: {first_line}\n")
            return 2
        if isinstance(exc, HalError):
            sys.stderr.write(f"hal: error: {first_line}\n")
            return 1
        hint = "" if debug else " (run with --debug for the traceback)"
        sys.stderr.write(f"hal: internal error: {type(exc).__name__}: {first_line}{hint}\n")
        return 1
