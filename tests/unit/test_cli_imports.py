"""The one-shot commands do not load what they do not use: validate imports neither MLflow,
git, kubernetes nor prometheus_client; only `run` needs the controller extra."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _modules_after(*argv: str) -> set[str]:
    program = ("import sys\nfrom mlflow_gitops.cli import main\n"
               f"try:\n    main({list(argv)!r})\nexcept SystemExit:\n    pass\n"
               "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    return set(done.stdout.split()[-1000:])


def test_validate_loads_no_registry_git_or_controller_libraries() -> None:
    """`validate` (offline) never imports mlflow, git, kubernetes or prometheus_client."""
    loaded = _modules_after("validate", str(ROOT / "environments"))
    assert not loaded & {"mlflow", "git", "kubernetes", "prometheus_client", "requests"}


def test_help_of_every_command_loads_no_controller_libraries() -> None:
    """Building the parser (every --help, every usage error) imports no kubernetes or
    prometheus_client, so the slim install can show all of it."""
    loaded = _modules_after("run", "--help")
    assert not loaded & {"kubernetes", "prometheus_client", "mlflow"}


def test_no_message_promises_a_next_reconcile() -> None:
    """Errors are shown by one-shot commands too, so none says "retrying next reconcile"
    (the controller's retry is its own business: backoff and the next pass)."""
    sources = [p.read_text() for p in (ROOT / "controller").rglob("*.py")]
    assert not [s for s in sources if "retrying next reconcile" in s]
