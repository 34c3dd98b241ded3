"""A one-line progress bar on stderr for compiles (no dependency: a carriage return and text).

``Bar(label, stream, force=...)`` is a :data:`~hal_core.compiler.progress.ProgressCallback`.
It draws only when ``stream`` is a terminal, or when forced; on a terminal it waits
``delay`` seconds before the first drawing, so small compiles stay silent, and redraws at most
every ``interval`` seconds (and whenever the phase changes). :meth:`Bar.close` erases it on a
terminal, or ends its line when forced elsewhere.
"""

from __future__ import annotations

import time
from typing import IO

from hal_core.compiler.progress import CompileProgress

WIDTH = 24


def wanted(stream: IO[str], force: bool | None) -> bool:
    """Draw a bar? ``force`` True/False decides; None: when ``stream`` is a terminal."""
    if force is not None:
        return force
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Bar:
    def __init__(self, label: str, stream: IO[str], *, force: bool | None = None,
                 delay: float = 0.3, interval: float = 0.1) -> None:
        self.label = label
        self.stream = stream
        self.enabled = wanted(stream, force)
        self.tty = self.enabled and force is not True and wanted(stream, None)
        self.delay = delay if force is not True else 0.0
        self.interval = interval
        self.start = time.monotonic()
        self.last_draw = float("-inf")
        self.last_phase = ""
        self.width = 0   # of the last line drawn, to blank what a shorter one leaves
        self.drawn = False

    def __call__(self, report: CompileProgress) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.start < self.delay:
            return
        if report.phase == self.last_phase and not report.finished and \
                now - self.last_draw < self.interval:
            return
        self.last_phase, self.last_draw = report.phase, now
        self._draw(render(self.label, report, now - self.start))

    def _draw(self, text: str) -> None:
        pad = " " * max(0, self.width - len(text))
        self.stream.write("\r" + text + pad)
        self.stream.flush()
        self.width = len(text)
        self.drawn = True

    def close(self) -> None:
        """Erase the bar (terminal) or end its line (forced elsewhere)."""
        if not self.drawn:
            return
        self.stream.write("\r" + " " * self.width + "\r" if self.tty else "\n")
        self.stream.flush()
        self.drawn = False

    def __enter__(self) -> Bar:  # noqa: PYI034 - typing.Self needs 3.11
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def render(label: str, report: CompileProgress, elapsed: float) -> str:
    """``label [#######.........] 12/40 kernels, target llvm-cpu 3.2s`` for a phase counted
    in kernels, ``label: constant folding 0.1s`` for the others."""
    if report.total <= 1:
        return f"{label}: {report.phase} {elapsed:.1f}s"
    fraction = min(max(report.done / report.total, 0.0), 1.0)
    filled = round(fraction * WIDTH)
    return (f"{label} [{'#' * filled}{'.' * (WIDTH - filled)}] {report.done}/{report.total} "
            f"kernels, {report.phase} {elapsed:.1f}s")
