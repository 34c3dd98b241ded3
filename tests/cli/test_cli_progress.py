"""The compile progress bar of the CLI (hal_core.cli._progress): terminal or forced only."""

from __future__ import annotations

import io

from hal_core.cli._progress import Bar, render
from hal_core.compiler.progress import CompileProgress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_render():
    assert render("compiling m for vmvx", CompileProgress("target vmvx", 3, 12), 1.25) == \
        "compiling m for vmvx [######..................] 3/12 kernels, target vmvx 1.2s"
    assert render("x", CompileProgress("fusion", 0, 1), 0.0) == "x: fusion 0.0s"


def test_silent_when_not_a_terminal():
    stream = io.StringIO()
    with Bar("b", stream, delay=0) as bar:
        bar(CompileProgress("target vmvx", 1, 4))
    assert stream.getvalue() == ""


def test_forced_off_a_terminal_draws_and_ends_its_line():
    stream = io.StringIO()
    with Bar("b", stream, force=True) as bar:
        bar(CompileProgress("target vmvx", 1, 4))
        bar(CompileProgress("target vmvx", 4, 4))
    text = stream.getvalue()
    assert text.startswith("\rb [######") and "1/4 kernels" in text and "4/4 kernels" in text
    assert text.endswith("\n")


def test_terminal_waits_then_draws_and_erases():
    stream = Terminal()
    bar = Bar("b", stream, delay=3600)       # a small compile: never drawn
    bar(CompileProgress("target vmvx", 1, 4))
    bar.close()
    assert stream.getvalue() == ""
    bar = Bar("b", stream, delay=0, interval=3600)
    bar(CompileProgress("target vmvx", 1, 4))
    bar(CompileProgress("target vmvx", 2, 4))   # same phase within the interval: skipped
    bar(CompileProgress("target vmvx", 4, 4))   # but the end of a phase is drawn
    bar.close()
    text = stream.getvalue()
    assert "1/4" in text and "2/4" not in text and "4/4" in text
    assert text.endswith("\r") and not text.endswith("\n")   # erased, no line left behind


def test_forced_off_wins_over_a_terminal():
    stream = Terminal()
    with Bar("b", stream, force=False, delay=0) as bar:
        bar(CompileProgress("target vmvx", 1, 4))
    assert stream.getvalue() == ""
