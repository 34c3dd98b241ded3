"""The README's op reference is the op table's (issue 6: it listed `sum` for `reduce_sum`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hal_core.ir.opdefs import OPS
from hal_core.ir.opdocs import BEGIN, END, NOTES, op_reference, replace_block

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_op_reference_matches_the_op_table():
    text = README.read_text()
    assert BEGIN in text and END in text
    block = text[text.index(BEGIN):text.index(END) + len(END)]
    assert block == op_reference(), (
        "README.md's op reference is stale; run `python -m hal_core.ir.opdocs README.md`")


def test_every_op_is_listed_by_its_parsed_name_with_its_attributes():
    ref = op_reference()
    for name, d in OPS.items():
        row = next(line for line in ref.splitlines() if line.startswith(f"| `{name}` |"))
        for a in d.attrs:
            assert f"`{a.name}`: {a.kind}" in row
    assert "| `reduce_sum` |" in ref and "| `sum` |" not in ref


def test_notes_name_real_ops():
    assert set(NOTES) <= set(OPS)


def test_replace_block_needs_the_markers():
    assert replace_block(f"a {BEGIN} old {END} b", "NEW") == "a NEW b"
    with pytest.raises(ValueError, match="markers"):
        replace_block("no markers", "NEW")
