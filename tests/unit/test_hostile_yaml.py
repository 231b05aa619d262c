"""Hostile environment files: any content is diagnostics with a line or a state, never an
exception; YAML 1.2 values; versions as plain digits; environment names MLflow accepts."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mlflow.exceptions import MlflowException
from mlflow.utils.validation import _validate_tag_name
from mlflow_gitops.desired import history
from mlflow_gitops.desired.fields import environment_name_problem
from mlflow_gitops.desired.loader import load_one, load_texts
from mlflow_gitops.desired.yamlsource import MAX_BYTES, MAX_DEPTH, parse

HEADER = "apiVersion: mlflow-gitops/v1\nkind: Environment\ntarget:\n  stage: Production\n"
PATH = "envs/production.yaml"


def _problems(body: str, path: str = PATH) -> list[str]:
    state, problems = load_texts({path: HEADER + body})
    assert state is None
    return [str(p) for p in problems]


@pytest.mark.parametrize("body, line, words", [
    ("models:\n  a: 3\nnotes: 2024-02-30\n", 7, "unknown key 'notes'"),
    ("models:\n  a: !!int abc\n", 6, "'abc' is not a whole number"),
    ("models:\n  a: " + "1" * 5000 + "\n", 6, "5000 digits is too long"),
    ("models:\n  a: !!timestamp 2024-02-30\n", 6, "day is out of range"),
    ("models:\n  a: !!float abc\n", 6, "could not convert"),
    ("x: " + "[" * 1000 + "]" * 1000 + "\n", 5, "nesting depth"),
    ("x: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "\n", 5, "nesting too deep"),
    ("x: !!python/object:os.system ls\n", 5, "constructor"),
    ("models:\n  ? [a, b]\n  : 3\n", 6, "a key must be a plain name"),
])
def test_any_unreadable_value_is_a_diagnostic_with_its_line(body: str, line: int,
                                                            words: str) -> None:
    """Values the YAML constructor refuses, limits and odd tags are file:line diagnostics."""
    problems = _problems(body)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{PATH}:{line}: ") and words in problems[0], problems
    assert len(problems[0]) <= 600


@pytest.mark.parametrize("written, fix", [
    ("010", "write 10"), ("012", "write 12"), ("+5", "write 5"), ("1_0", "write 10"),
    ("0x1F", "decimal"), ("0o17", "decimal"), ("1:00", "base-60"), ("3.0", "write 3"),
])
def test_a_version_must_be_plain_decimal_digits(written: str, fix: str) -> None:
    """Any version YAML 1.1 and 1.2 tools could read differently is refused with the fix."""
    for body in (f"models:\n  a: {written}\n", f"models:\n  a:\n    version: {written}\n"):
        problems = _problems(body)
        assert len(problems) == 1, problems
        assert "version must be plain decimal digits" in problems[0] and fix in problems[0]
        assert problems[0].startswith(f"{PATH}:{6 if 'version:' not in body else 7}: a:")


def test_values_follow_yaml_1_2_not_1_1() -> None:
    """yes/no/on/off are strings, dates are strings, 010 is ten: as YAML 1.2 editors read."""
    data = parse("a: yes\nb: off\nc: 2024-02-30\nd: 010\ne: 0.5\nf: ~\ng: true\nh: 1:00\n").data
    assert data == {"a": "yes", "b": "off", "c": "2024-02-30", "d": 10, "e": 0.5, "f": None,
                    "g": True, "h": "1:00"}
    assert "self_heal must be true or false, got 'no'" in _problems(
        "sync:\n  self_heal: no\n")[0]


def test_merge_keys_are_refused() -> None:
    """`<<` cannot add entries behind a reviewer's back: it is an error, also as !!merge."""
    for body in ("models:\n  <<: {m: 5}\n  a: 3\n", "models:\n  !!merge <<: {m: 5}\n"):
        problems = _problems(body)
        assert problems == [f"{PATH}:6: YAML merge keys (<<) are not supported in environment "
                            "files; write the entries out"]
    state, _ = load_texts({PATH: HEADER + "models:\n  '<<': 3\n"})
    assert state is not None and list(state.environments[0].models) == ["<<"]  # quoted: a name


def test_files_larger_than_the_limit_are_refused_without_parsing() -> None:
    """A file over MAX_BYTES is one diagnostic at line 1."""
    problems = _problems("#" * (MAX_BYTES + 1) + "\n")
    assert problems[0].startswith(f"{PATH}:1: file is") and "split it" in problems[0]


def test_huge_values_are_cut_short_in_messages() -> None:
    """A megabyte-long value is not echoed back whole."""
    problems = _problems("name: " + "x" * 100_000 + "\n")
    assert all(len(p) < 600 for p in problems)


@pytest.mark.parametrize("name", ["canary#1", "a:b", "a?b", "prod\\x", "x" * 239])
def test_environment_names_mlflow_cannot_tag_are_refused(name: str) -> None:
    """A file whose stem cannot be part of a tag key is invalid before any write fails."""
    problems = _problems("models:\n  a: 3\n", path=f"envs/{name}.yaml")
    assert any("cannot be part of an MLflow tag key" in p or "fit in an MLflow tag key" in p
               for p in problems), problems


def _mlflow_accepts(key: str) -> bool:
    try:
        _validate_tag_name(key)
    except MlflowException:
        return False
    return len(key) <= 250


@given(st.text(alphabet=st.characters(blacklist_characters=":"), max_size=40))
def test_environment_name_check_agrees_with_mlflow(name: str) -> None:
    """Every name we accept, MLflow accepts as part of both tag keys (':' aside: Windows);
    beyond MLflow, we also refuse hidden or ambiguous names ('.x', 'a..b', ' x ')."""
    ours_only = name.startswith(".") or ".." in name or name != name.strip()
    if environment_name_problem(name) is None:
        assert _mlflow_accepts("gitops.env." + name) and _mlflow_accepts("gitops.hold." + name)
    elif name and "/" not in name and not ours_only:
        assert not _mlflow_accepts("gitops.hold." + name)


def _rev(sha: str, text: str) -> history.Revision:
    return history.Revision(sha, "A <a@example.com>", datetime(2024, 1, 1, tzinfo=timezone.utc),
                            "s", text)


def test_history_skips_revisions_that_cannot_be_read() -> None:
    """A bad revision in a file's history assigned nothing; the walk does not stop there."""
    revisions = [_rev("c3", HEADER + "models:\n  a: 4\n"),
                 _rev("c2", HEADER + "models:\n  a: !!int abc\n"),
                 _rev("c1", HEADER + "x: " + "[" * 1000 + "]" * 1000 + "\n"),
                 _rev("c0", HEADER + "models:\n  a: 3\n")]
    assert [(a.revision.sha, a.version) for a in history.assigned(revisions, PATH, "a")] == [
        ("c3", 4), ("c0", 3)]


# -- property tests: never an exception ---------------------------------------------------

_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                     st.text(max_size=20), st.dates().map(str))
_documents = st.recursive(
    _scalars,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.text(max_size=10), children, max_size=4)),
    max_leaves=30)
_keys = st.sampled_from(["apiVersion", "kind", "name", "target", "stage", "alias", "models",
                         "sync", "self_heal", "promotion", "from", "gates", "metric", "min",
                         "version", "<<", "registry", "min_soak", "windows"])
_shaped = st.recursive(
    _scalars | st.sampled_from(["Production", "mlflow-gitops/v1", "Environment", "24h"]),
    lambda children: st.one_of(st.lists(children, max_size=3),
                               st.dictionaries(_keys, children, max_size=5)),
    max_leaves=40)


def _check(result: tuple[Any, list[Any]]) -> None:
    env, problems = result
    assert (env is None) == bool(problems)
    for p in problems:
        assert p.line >= 1 and p.message and len(p.message) <= 600


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400))
def test_arbitrary_text_is_a_state_or_diagnostics(text: str) -> None:
    """Any text at all: the loader answers with a state or diagnostics, never raises."""
    _check(load_one(PATH, text))
    _check(load_one(PATH, HEADER + text))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(_documents | _shaped, st.sampled_from(["block", "flow", "canonical"]))
def test_arbitrary_yaml_documents_are_a_state_or_diagnostics(doc: Any, style: str) -> None:
    """Any YAML document PyYAML can write: a state or diagnostics, never an exception."""
    text = yaml.dump(doc, default_flow_style=style == "flow", canonical=style == "canonical",
                     allow_unicode=True)
    _check(load_one(PATH, text))
    _check(load_texts({PATH: text, "envs/staging.yaml": text}))
