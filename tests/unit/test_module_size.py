"""Modules stay small enough to read in one sitting."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 400


def test_no_module_under_controller_is_over_400_lines() -> None:
    """A module under controller/ longer than 400 lines fails the build: split it."""
    too_long = {p.relative_to(ROOT / "controller").as_posix(): lines
                for p in sorted((ROOT / "controller").rglob("*.py"))
                if (lines := len(p.read_text().splitlines())) > MAX_LINES}
    assert not too_long, f"modules over {MAX_LINES} lines (split them): {too_long}"
