"""docs/architecture.md names every module of the package."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_module_is_named_in_the_architecture_doc() -> None:
    """A module under controller/ that docs/architecture.md does not name fails the build."""
    doc = (ROOT / "docs" / "architecture.md").read_text()
    missing = [p.relative_to(ROOT / "controller").as_posix()
               for p in sorted((ROOT / "controller").rglob("*.py"))
               if p.name != "__init__.py"
               and f"`{p.relative_to(ROOT / 'controller').as_posix()}`" not in doc]
    assert not missing, f"docs/architecture.md does not name: {missing}"
