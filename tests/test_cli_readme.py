"""The README's Quick start and .ci/run stay in step (a behaviour check of the docs)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", section, re.DOTALL)]


def test_quick_start_is_exactly_two_one_line_commands():
    commands = quick_start_commands()
    assert len(commands) == 2
    assert all("\n" not in command for command in commands)


def test_ci_runs_the_readme_test_command_exactly():
    script = (ROOT / ".ci" / "run").read_text()
    assert script.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in script
    lines = [line for line in script.splitlines() if line and not line.startswith("#")]
    assert lines[-1] == quick_start_commands()[1]


def test_files_named_by_the_quick_start_exist():
    for command in quick_start_commands():
        for path in re.findall(r"[\w./-]+\.(?:py|ini|toml|mlir)\b", command):
            assert (ROOT / path).exists(), f"README Quick start names {path}, which is missing"
