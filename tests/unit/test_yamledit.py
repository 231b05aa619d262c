"""yamledit: an environment file edited by `promote`/`rollback` changes in one value only."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from mlflow_gitops.core.errors import ConfigError
from mlflow_gitops.desired.loader import load_texts
from mlflow_gitops.desired.yamledit import model_version, remove_model, set_model_version

PRODUCTION = """\
# yaml-language-server: $schema=./schema.json
# Production: reviewed by the ML platform leads (CODEOWNERS).
apiVersion: mlflow-gitops/v1   # required
kind: Environment
name: "production"
target:
    stage: 'Production'

sync:
    self_heal: true
    archive_previous: true     # the old version goes to Archived


promotion:
    from: staging
    gates:
    - metric: accuracy         # of the source run
      min: 0.92
models:
    # the fraud model: owned by the risk team
    fraud-detector: 3          # bumped by alice
    "churn-model":
        version: 7             # long form
        model_name: 'churn'

    ranker: {version: 2, model_name: "rank-v2"}
# end of models
"""


STAGING = "apiVersion: mlflow-gitops/v1\nkind: Environment\ntarget:\n  stage: Staging\n"


def _validate(production: str):  # type: ignore[no-untyped-def]
    return load_texts({"production.yaml": production, "staging.yaml": STAGING})


def _with(old: str, new: str, text: str = PRODUCTION) -> str:
    assert text.count(old) == 1, f"{old!r} must occur once in the fixture"
    return text.replace(old, new)


def test_short_form_changes_only_its_value() -> None:
    """A short-form entry keeps its form, comment and spacing; only the number changes."""
    result = set_model_version(PRODUCTION, "fraud-detector", 4)
    assert result == _with("fraud-detector: 3 ", "fraud-detector: 4 ")


def test_long_form_changes_only_version() -> None:
    """A long-form entry (quoted key) changes only its `version:` line."""
    result = set_model_version(PRODUCTION, "churn-model", 12)
    assert result == _with("version: 7 ", "version: 12 ")


def test_flow_long_form_changes_only_version() -> None:
    """A `{version: N, ...}` entry changes only the number inside the braces."""
    result = set_model_version(PRODUCTION, "ranker", 3)
    assert result == _with("{version: 2,", "{version: 3,")


def test_same_version_is_a_no_op() -> None:
    """Setting the version a model already has returns the text unchanged."""
    assert set_model_version(PRODUCTION, "fraud-detector", 3) == PRODUCTION


def test_new_model_is_appended_in_the_files_indentation() -> None:
    """A model not yet listed goes after the last entry, indented like its siblings."""
    result = set_model_version(PRODUCTION, "recommender", 1)
    expected = _with(
        '    ranker: {version: 2, model_name: "rank-v2"}\n',
        '    ranker: {version: 2, model_name: "rank-v2"}\n    recommender: 1\n',
    )
    assert result == expected


def test_new_model_name_that_needs_quotes_is_quoted() -> None:
    """A name YAML would misread (a boolean word, a space, a quote) is written double-quoted."""
    for name, key in [("yes", '"yes"'), ("credit score", '"credit score"'), ('a"b', '"a\\"b"')]:
        result = set_model_version("models:\n  a: 1\n", name, 5)
        assert result == f"models:\n  a: 1\n  {key}: 5\n"
        assert yaml.safe_load(result)["models"][name] == 5


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("kind: Environment\nmodels:\n", "kind: Environment\nmodels:\n  churn: 2\n"),
        ("kind: Environment\nmodels: {}   # none yet\n",
         "kind: Environment\nmodels:   # none yet\n  churn: 2\n"),
        ("kind: Environment\nmodels: ~\nsync:\n  prune: false\n",
         "kind: Environment\nmodels:\n  churn: 2\nsync:\n  prune: false\n"),
        ("target:\n    stage: Staging\n", "target:\n    stage: Staging\nmodels:\n    churn: 2\n"),
        ("target:\n  stage: Staging", "target:\n  stage: Staging\nmodels:\n  churn: 2\n"),
    ],
    ids=["empty", "empty-flow", "null", "absent-4-spaces", "absent-no-final-newline"],
)
def test_empty_or_absent_models(before: str, after: str) -> None:
    """An empty, null or missing `models:` gets a block entry in the file's indentation."""
    assert set_model_version(before, "churn", 2) == after


def test_flow_models_mapping_keeps_its_style() -> None:
    """`models: {a: 1}` stays a flow mapping when a model is changed, added or removed."""
    text = 'models: {a: 1, "b": {version: 2}}  # flow\n'
    assert set_model_version(text, "b", 3) == 'models: {a: 1, "b": {version: 3}}  # flow\n'
    assert set_model_version(text, "c", 4) == 'models: {a: 1, "b": {version: 2}, c: 4}  # flow\n'
    assert remove_model(text, "a") == 'models: {"b": {version: 2}}  # flow\n'
    assert remove_model(text, "b") == "models: {a: 1}  # flow\n"


def test_long_form_without_version_gets_one() -> None:
    """A long-form entry that lacks `version:` gets it as its first key."""
    text = "models:\n  churn:\n    model_name: churn-eu   # EU registry name\n"
    assert set_model_version(text, "churn", 9) == (
        "models:\n  churn:\n    version: 9\n    model_name: churn-eu   # EU registry name\n"
    )


def test_a_version_written_as_text_is_replaced_by_the_number() -> None:
    """A quoted or mistyped version (which validate rejects) is replaced in place by the int."""
    text = "models:\n  a: '3'   # quoted by mistake\n  b: latest\n"
    assert set_model_version(text, "a", 4) == "models:\n  a: 4   # quoted by mistake\n  b: latest\n"
    assert set_model_version(text, "b", 5) == "models:\n  a: '3'   # quoted by mistake\n  b: 5\n"
    with pytest.raises(ConfigError, match="not a positive integer"):
        model_version(text, "b")


def test_windows_line_endings_are_kept() -> None:
    """A CRLF file stays CRLF, including an appended line."""
    text = "kind: Environment\r\nmodels:\r\n  a: 1\r\n"
    assert set_model_version(text, "a", 2) == "kind: Environment\r\nmodels:\r\n  a: 2\r\n"
    assert set_model_version(text, "b", 2) == "kind: Environment\r\nmodels:\r\n  a: 1\r\n  b: 2\r\n"


def test_remove_short_and_long_entries() -> None:
    """remove_model deletes the entry's own lines and leaves comments and blank lines around it."""
    assert remove_model(PRODUCTION, "fraud-detector") == _with(
        "    fraud-detector: 3          # bumped by alice\n", ""
    )
    assert remove_model(PRODUCTION, "churn-model") == _with(
        '    "churn-model":\n        version: 7             # long form\n'
        "        model_name: 'churn'\n",
        "",
    )
    assert remove_model(PRODUCTION, "absent") == PRODUCTION


def test_removing_the_last_model_leaves_a_valid_empty_models() -> None:
    """An environment whose last model is removed still validates (`models:` is empty)."""
    text = PRODUCTION
    for model in ("fraud-detector", "churn-model", "ranker"):
        text = remove_model(text, model)
    state, diagnostics = _validate(text)
    assert diagnostics == []
    assert state is not None
    production = next(env for env in state.environments if env.name == "production")
    assert dict(production.models) == {}


def test_model_version_reads_every_form() -> None:
    """model_version reads the short form, the long form, and None for an unlisted model."""
    assert model_version(PRODUCTION, "fraud-detector") == 3
    assert model_version(PRODUCTION, "churn-model") == 7
    assert model_version(PRODUCTION, "ranker") == 2
    assert model_version(PRODUCTION, "recommender") is None


def test_edited_file_is_still_a_valid_environment() -> None:
    """The edited text passes the same validation as `mlflow-gitops validate`."""
    result = set_model_version(set_model_version(PRODUCTION, "ranker", 5), "new-model", 1)
    state, diagnostics = _validate(result)
    assert diagnostics == []
    assert state is not None
    production = next(env for env in state.environments if env.name == "production")
    versions = {name: entry.version for name, entry in production.models.items()}
    assert versions == {"fraud-detector": 3, "churn-model": 7, "ranker": 5, "new-model": 1}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n- b\n", "not an environment file"),
        ("", "not an environment file"),
        ("models: [\n", "invalid YAML"),
        ("models:\n  a: 1\n  a: 2\n", "duplicate key"),
        ("models:\n  - a\n", "models must map model names to versions"),
        ("models:\n  a: [1]\n", "models.a must be a version"),
    ],
)
def test_not_an_environment_mapping_is_a_config_error(text: str, message: str) -> None:
    """Text that is not an environment mapping raises ConfigError with a clear message."""
    with pytest.raises(ConfigError, match=message):
        set_model_version(text, "a", 1)


def test_version_must_be_a_positive_integer() -> None:
    """Zero, negatives and booleans are refused before the text is touched."""
    for bad in (0, -1, True):
        with pytest.raises(ConfigError, match="positive integer"):
            set_model_version(PRODUCTION, "fraud-detector", bad)


_names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=20,
)


@settings(max_examples=300, deadline=None)
@given(name=_names, version=st.integers(min_value=1, max_value=10**6), existing=st.booleans())
def test_set_then_read_back_changes_one_line(name: str, version: int, existing: bool) -> None:
    """For any name and version, set then read gives the version and no other line changes."""
    base = set_model_version(PRODUCTION, name, 1) if existing else PRODUCTION
    result = set_model_version(base, name, version)
    assert model_version(result, name) == version
    loaded = yaml.safe_load(result)["models"][name]  # PyYAML, as `validate` reads it
    assert (loaded["version"] if isinstance(loaded, dict) else loaded) == version
    before, after = base.split("\n"), result.split("\n")
    if existing or name in ("fraud-detector", "churn-model", "ranker"):
        assert len(after) == len(before)
        assert sum(a != b for a, b in zip(before, after, strict=True)) <= 1
    else:
        assert len(after) == len(before) + 1
        added = next(i for i, (a, b) in enumerate(zip(before, after, strict=False)) if a != b)
        assert after[:added] + after[added + 1 :] == before
