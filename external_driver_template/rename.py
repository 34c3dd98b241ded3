#!/usr/bin/env python3
"""Rename this plugin: ``python rename.py NEW`` (e.g. ``python rename.py mychip``).

Every occurrence of the current name ``OLD`` (below) in this folder's text files and file names
becomes NEW, in three spellings: ``OLD`` -> ``NEW`` (driver and target name, device URIs,
format ``OLD-program``, distribution ``hal-OLD``, package ``hal_OLD``), capitalised (class
names such as ``<Old>Device``) and upper case (constants). ``OLD`` itself is rewritten too, so
the script can be run again. Build outputs (``build/``, ``*.egg-info``, ``__pycache__``) are
deleted first: reinstall with ``pip install -e .`` after renaming.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

OLD = "example"

ROOT = Path(__file__).resolve().parent
SKIP_DIRS = {".git", "__pycache__", "build", "dist", ".pytest_cache", ".venv", ".tox"}
TEXT_SUFFIXES = {".py", ".toml", ".md", ".txt", ".cfg", ".ini", ".json", ".fbs", ".mlir", ""}


def check_name(name: str) -> str | None:
    """None when ``name`` can be a driver, distribution and package name; else why not."""
    if not re.fullmatch(r"[a-z][a-z0-9]*", name):
        return (f"{name!r} must be lowercase letters and digits, starting with a letter (it "
                f"becomes the driver name, the package hal_{name} and the distribution "
                f"hal-{name})")
    if name == OLD:
        return f"the plugin is already named {name!r}"
    return None


def _files(root: Path) -> list[Path]:
    out = []
    for path in sorted(root.rglob("*")):
        if any(part in SKIP_DIRS or part.endswith(".egg-info") for part in
               path.relative_to(root).parts):
            continue
        if path.is_file() and path.suffix in TEXT_SUFFIXES:
            out.append(path)
    return out


def rename(new: str, root: Path = ROOT) -> list[Path]:
    """Rename the plugin in ``root`` from OLD to ``new``; return the files changed."""
    problem = check_name(new)
    if problem:
        raise SystemExit(f"rename.py: {problem}")
    for junk in [*root.rglob("*.egg-info"), *root.rglob("__pycache__"), root / "build"]:
        if junk.is_dir():
            shutil.rmtree(junk)
    pairs = [(OLD, new), (OLD.capitalize(), new.capitalize()), (OLD.upper(), new.upper())]
    pattern = re.compile("|".join(re.escape(old) for old, _ in pairs))
    table = dict(pairs)
    changed = []
    for path in _files(root):
        text = path.read_text(encoding="utf-8")
        new_text = pattern.sub(lambda m: table[m.group(0)], text)
        if new_text != text:
            path.write_text(new_text, encoding="utf-8")
            changed.append(path)
    # Paths last, deepest first, so parents are renamed after their children.
    for path in sorted(root.rglob(f"*{OLD}*"), key=lambda p: len(p.parts), reverse=True):
        if any(part in SKIP_DIRS for part in path.relative_to(root).parts):
            continue
        path.rename(path.with_name(pattern.sub(lambda m: table[m.group(0)], path.name)))
    return changed


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    changed = rename(argv[0])
    print(f"renamed {OLD} -> {argv[0]} in {len(changed)} files; now run: pip install -e .")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
