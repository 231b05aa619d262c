"""A venv with the controller's runtime dependencies only (`[project] dependencies` and the
`controller` extra, so mlflow-skinny, as in the container image), kept under .bench/ and
rebuilt when that list changes. The controller's memory is measured there, as deployed:
the dev venv carries the
full `mlflow` (needed to run the server), and importing it there pulls pandas, numpy and
more into the controller process. The controller's code comes from this checkout through
PYTHONPATH, so the venv never goes stale."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path


def dependencies(root: Path) -> list[str] | None:
    """The runtime dependencies, or None where they cannot be read (Python < 3.11)."""
    try:
        import tomllib
    except ImportError:
        return None
    with (root / "pyproject.toml").open("rb") as fh:
        project = tomllib.load(fh)["project"]
    # `run` needs the controller extra (metrics, leader election) besides the slim install.
    extra = [d for d in project["optional-dependencies"]["controller"]
             if not d.startswith("mlflow-gitops")]
    return [*project["dependencies"], *extra]


class RuntimeVenv:
    def __init__(self, root: Path, workdir: Path):
        self.root = root
        self.path = workdir / "runtime-venv"
        deps = dependencies(root)
        self.deps = deps or []
        digest = hashlib.sha256("\n".join([sys.version, *self.deps]).encode()).hexdigest()
        self.stamp = self.path / f".installed-{digest[:16]}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.error: str | None = None if deps else "cannot read pyproject.toml without tomllib"

    @property
    def pythonpath(self) -> str:
        """This checkout on PYTHONPATH: the package's source folder `controller/` imports
        as `mlflow_gitops` through a symlink, and the root gives `bench` and `tests`."""
        link = self.path.parent / "pythonpath" / "mlflow_gitops"
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink() or link.resolve() != (self.root / "controller").resolve():
            link.unlink(missing_ok=True)
            link.symlink_to(self.root / "controller")
        return f"{link.parent}{os.pathsep}{self.root}"

    @property
    def python(self) -> str:
        return str(self.path / "bin" / "python")

    def start(self) -> RuntimeVenv:
        """Begin installing in the background (it overlaps with seeding); no-op when ready."""
        if self.stamp.exists() or self.error:
            return self
        shutil.rmtree(self.path, ignore_errors=True)
        script = (f'"{sys.executable}" -m venv "{self.path}" && '
                  f'"{self.python}" -m pip install --quiet --disable-pip-version-check '
                  + " ".join(f'"{d}"' for d in self.deps))
        self.log = self.path.parent / "runtime-venv.log"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(["bash", "-c", script], stdout=out,
                                         stderr=subprocess.STDOUT)
        return self

    def ready(self, timeout: float = 300) -> bool:
        """Wait for the install; False (with `error` set) when it failed."""
        if self.error:
            return False
        if self.proc is not None:
            try:
                code = self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                code = -1
            self.proc = None
            if code != 0:
                self.error = f"installing the runtime venv failed; see {self.log}"
                return False
            self.stamp.touch()
        return self.stamp.exists()
