"""The slim install (`pip install .`, no extras) is enough for everything but `run`: built into
an empty virtualenv from this checkout with its dependencies from the package index, then
used the way a CI job or a pre-commit hook uses it. `run` says which extra it needs."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLEAN_ENV = {k: v for k, v in os.environ.items()
             if not k.startswith(("VIRTUAL_ENV", "PYTHON", "PIP_REQUIRE", "MLFLOW_"))}


def _slim_venv() -> Path:
    """A virtualenv with `pip install <checkout>`, kept under build/ between sessions: made
    once per pyproject.toml (all dependencies resolved from the index), then only the
    project itself is reinstalled, so it always holds this checkout's code."""
    key = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()[:12]
    venv = ROOT / "build" / f"slim-venv-{key}"
    python = venv / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if not (venv / ".complete").exists():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        done = subprocess.run([*pip, str(ROOT)], capture_output=True, text=True, env=CLEAN_ENV,
                              timeout=600)
        if done.returncode != 0:
            pytest.fail(f"pip install {ROOT} failed:\n{done.stderr[-2000:]}")
        (venv / ".complete").touch()
    else:
        subprocess.run([*pip, "--no-deps", "--force-reinstall", str(ROOT)], check=True,
                       capture_output=True, env=CLEAN_ENV, timeout=300)
    return venv


@pytest.fixture(scope="module")
def slim() -> Path:
    return _slim_venv()


def _installed(venv: Path, name: str) -> bool:
    done = subprocess.run([str(venv / "bin" / "python"), "-c",
                           f"import importlib.util, sys; sys.exit(importlib.util.find_spec("
                           f"{name!r}) is None)"], env=CLEAN_ENV)
    return done.returncode == 0


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_validate_works_with_the_slim_install(slim: Path, tmp_path: Path) -> None:
    """`mlflow-gitops validate environments/` from a plain `pip install .` (installed, not
    editable) exits 0, and neither kubernetes nor prometheus-client was installed."""
    assert not _installed(slim, "kubernetes") and not _installed(slim, "prometheus_client")
    done = subprocess.run([str(slim / "bin" / "mlflow-gitops"), "validate",
                           str(ROOT / "environments")], capture_output=True, text=True,
                          cwd=tmp_path, env=CLEAN_ENV, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("3 environment file(s) valid")
    where = subprocess.run([str(slim / "bin" / "python"), "-c",
                            "import mlflow_gitops; print(mlflow_gitops.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path, env=CLEAN_ENV)
    assert str(slim) in where.stdout  # the installed copy, not this checkout


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_run_without_the_controller_extra_says_what_to_install(slim: Path,
                                                               tmp_path: Path) -> None:
    """`mlflow-gitops run` on the slim install exits 1 with one line naming the extra."""
    done = subprocess.run([str(slim / "bin" / "mlflow-gitops"), "run", "--repo-url",
                           "file:///nowhere"], capture_output=True, text=True, cwd=tmp_path,
                          env=CLEAN_ENV, timeout=120)
    assert done.returncode == 1
    assert done.stderr == ("mlflow-gitops: error: 'run' needs prometheus_client and "
                           "kubernetes, which the slim install leaves out: pip install "
                           "'mlflow-gitops[controller]'\n")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_sqlite_uri_on_the_slim_install_says_which_extra_to_install(slim: Path,
                                                                     tmp_path: Path) -> None:
    """`plan` with a sqlite: tracking URI on the slim install: one line naming the extra, not
    MLflow's long list of supported schemes."""
    env = {**CLEAN_ENV, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"}
    done = subprocess.run([str(slim / "bin" / "mlflow-gitops"), "plan",
                           str(ROOT / "environments")], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=120)
    assert done.returncode == 1
    assert done.stderr.endswith("this install has no SQL store (the slim install leaves it "
                                "out); run: pip install 'mlflow-gitops[sqlite]' (the full "
                                "MLflow, with its SQL store)\n"), done.stderr
    assert len(done.stderr.splitlines()) == 1 and "Supported URI schemes" not in done.stderr


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_wheel_builds_without_packaging_warnings_and_ships_the_templates(
        tmp_path: Path) -> None:
    """What `make dist` runs builds a wheel with the page's templates as package data, and
    setuptools prints no 'Package would be ignored' warnings."""
    import zipfile

    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps",
                           "--disable-pip-version-check", "-w", str(tmp_path), str(ROOT)],
                          capture_output=True, text=True, env=CLEAN_ENV, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "would be ignored" not in done.stdout + done.stderr
    (wheel,) = tmp_path.glob("mlflow_gitops-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "mlflow_gitops/adapters/templates/index.html" in names
