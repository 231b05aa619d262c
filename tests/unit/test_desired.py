"""Loading environment files: values out, every problem as a diagnostic with its line."""

from __future__ import annotations

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
