"""Helpers for the compiler tests."""

from __future__ import annotations

from typing import Any

from hal_core.ir import Builder
from hal_core.module.model import Barrier, Copy, Dispatch


def build(fn: Any, *specs: tuple[tuple[int, ...], str], name: str = "main") -> Any:
    """A one-function module: ``fn(*tensors)`` returns the result tensor(s)."""
    b = Builder()
    with b.function(name, [(f"a{i}", s, d) for i, (s, d) in enumerate(specs)]) as f:
        out = fn(*f.args)
        f.ret(*(out if isinstance(out, tuple) else (out,)))
    return b.module()


def kinds(program: Any) -> list[str]:
    """The host program as a list of op kinds: 'D', 'B', 'C', 'F'."""
    return [{Dispatch: "D", Barrier: "B", Copy: "C"}.get(type(op), "F") for op in program]
