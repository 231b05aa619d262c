"""Loading environment files: values out, every problem as a diagnostic with its line."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow_gitops.desired.loader import load_texts

HEADER = "apiVersion: mlflow-gitops/v1\nkind: Environment\n"


def test_short_and_long_forms_load_with_their_lines() -> None:
    """Both model forms load, each entry remembering the line it was written on."""
    state, problems = load_texts({"envs/production.yaml": HEADER + (
        "target:\n  stage: production\nmodels:\n  a: 3\n  b:\n    version: 7\n")})
    assert problems == [] and state is not None
    env = state.environments[0]
    assert env.target.value == "Production"
    assert {m: (e.version, e.line) for m, e in env.models.items()} == {"a": (3, 6), "b": (7, 7)}


def test_anchors_and_aliases_are_refused_not_expanded() -> None:
    """A self-referencing anchor or an alias bomb is one diagnostic, never a hang or crash."""
    bomb = "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n"
        for i in range(12))
    for text in ("x: &a [*a]\n", bomb):
        state, problems = load_texts({"envs/p.yaml": text})
        assert state is None and len(problems) == 1
        assert "anchors and aliases" in problems[0].message


def test_every_problem_of_a_file_is_reported_at_once() -> None:
    """Unknown keys, bad versions and a name mismatch all come back together, sorted."""
    _, problems = load_texts({"envs/production.yaml": HEADER + (
        "name: prod\ntarget:\n  stage: Production\nsynk: {}\nmodels:\n  a: 0\n  b: x\n")})
    assert [(p.line, p.message.split(":")[0]) for p in problems] == [
        (3, "name 'prod' does not match the file name 'production'"),
        (6, "unknown key 'synk'"), (8, "a"), (9, "b")]


def test_a_files_own_error_comes_before_what_follows_from_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A YAML syntax error in staging.yaml is reported first (validate, the controller's
    last_error, which is the first diagnostic), and production's `from: staging` is named as
    its consequence, not as an environment that does not exist."""
    from mlflow_gitops.cli import main
    from mlflow_gitops.core.diagnostics import InvalidDesiredState
    from mlflow_gitops.desired.loader import load_texts

    head = "apiVersion: mlflow-gitops/v1\nkind: Environment\n"
    files = {"envs/production.yaml": head + "target: {stage: Production}\n"
             "promotion:\n  from: staging\nmodels:\n  m: 2\n",
             "envs/staging.yaml": head + "target: {stage: Staging}\nmodels:\n  m: [1\n"}
    state, diagnostics = load_texts(files)
    assert state is None
    assert diagnostics[0].file == "envs/staging.yaml"
    assert [d.file for d in diagnostics] == ["envs/staging.yaml", "envs/production.yaml"]
    assert "which does not exist" not in diagnostics[1].message
    assert "consequence" in diagnostics[1].message and "staging.yaml" in diagnostics[1].message
    assert str(InvalidDesiredState(diagnostics)).startswith("envs/staging.yaml:")
    folder = tmp_path / "envs"
    folder.mkdir()
    for path, text in files.items():
        (tmp_path / path).write_text(text)
    assert main(["validate", str(folder)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith(f"{folder}/staging.yaml:") and "consequence" in lines[1]
