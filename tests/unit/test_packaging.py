"""The wheel installs the source folder controller/ as the import package mlflow_gitops."""

from __future__ import annotations

from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[2]


def _pyproject() -> dict:  # type: ignore[type-arg]
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_source_package_is_listed_under_its_import_name() -> None:
    """Each folder of controller/ with an __init__.py is shipped as mlflow_gitops.<folder>."""
    found = sorted(
        ".".join(("mlflow_gitops", *p.parent.relative_to(ROOT / "controller").parts))
        for p in (ROOT / "controller").rglob("__init__.py"))
    assert sorted(_pyproject()["tool"]["setuptools"]["packages"]) == found


def test_no_generic_top_level_package_is_installed() -> None:
    """Only mlflow_gitops is mapped: a wheel never claims the name `controller`."""
    setuptools = _pyproject()["tool"]["setuptools"]
    assert setuptools["package-dir"] == {"mlflow_gitops": "controller"}
    assert all(p == "mlflow_gitops" or p.startswith("mlflow_gitops.")
               for p in setuptools["packages"])


def test_the_import_package_is_the_source_folder() -> None:
    """`import mlflow_gitops` loads controller/ (the editable install used by the tests)."""
    import mlflow_gitops

    assert Path(mlflow_gitops.__file__).resolve() == ROOT / "controller" / "__init__.py"
