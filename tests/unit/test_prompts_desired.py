"""`prompts:` in environment files: loaded beside `models:`, refused where prompts cannot
go, and published in the JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml
from mlflow_gitops.desired.loader import load_texts
from mlflow_gitops.desired.schema import json_schema

HEADER = "apiVersion: mlflow-gitops/v1\nkind: Environment\n"
ALIAS = HEADER + "target:\n  alias: champion\n"
STAGE = HEADER + "target:\n  stage: Production\n"


def messages(files: dict[str, str]) -> list[str]:
    state, problems = load_texts(files)
    assert state is None
    return [str(p) for p in problems]


def test_prompts_load_as_entries_of_kind_prompt_beside_the_models() -> None:
    """A prompt entry (short and long form) keeps its line and says it is a prompt."""
    text = ALIAS + "models:\n  fraud: 3\nprompts:\n  summarizer: 4\n  triage:\n    version: 2\n"
    state, problems = load_texts({"environments/champion.yaml": text})
    assert not problems and state is not None
    [env] = state.environments
    assert {n: (e.version, e.line, e.kind) for n, e in env.models.items()} == {
        "fraud": (3, 6, "model"), "summarizer": (4, 8, "prompt"), "triage": (2, 9, "prompt")}
    assert env.kind_of("summarizer") == "prompt" and env.kind_of("fraud") == "model"


def test_a_stage_environment_listing_prompts_is_an_error_at_the_prompts_line() -> None:
    """Prompts have no stages: the file is invalid, the line is the `prompts:` key."""
    text = STAGE + "models:\n  fraud: 3\nprompts:\n  summarizer: 4\n"
    [message] = messages({"environments/production.yaml": text})
    assert message.startswith("environments/production.yaml:7: prompts: a stage environment "
                              "cannot list prompts")


def test_one_name_under_models_and_prompts_is_an_error_naming_both_lines() -> None:
    """A registry name is a model or a prompt; listing it under both is refused."""
    text = ALIAS + "models:\n  shared: 3\nprompts:\n  shared: 4\n"
    [message] = messages({"environments/champion.yaml": text})
    assert message == ("environments/champion.yaml:8: 'shared' is listed under both models: "
                       "and prompts: (also line 6); a registry name is one or the other")


def test_a_prompt_in_one_file_and_a_model_in_another_is_an_error() -> None:
    """Two files of one registry disagree whether a name is a prompt or a model."""
    one = ALIAS + "prompts:\n  shared: 4\n"
    two = HEADER + "target:\n  alias: canary\nmodels:\n  shared: 3\n"
    [message] = messages({"environments/champion.yaml": one, "environments/canary.yaml": two})
    assert message.startswith("environments/champion.yaml:6: 'shared' is listed under prompts:")
    assert "models: in environments/canary.yaml:6" in message


def test_prompt_versions_and_names_are_checked_like_model_versions() -> None:
    """A zero version, an octal-looking version and an unknown key are each reported."""
    bad_version = ALIAS + "prompts:\n  summarizer: 0\n  triage: 010\n"
    found = messages({"environments/champion.yaml": bad_version})
    assert any(":6: summarizer: version must be a positive whole number" in m for m in found)
    assert any(":7: triage: version must be plain decimal digits" in m for m in found)
    unknown = ALIAS + "prompts:\n  summarizer:\n    version: 2\n    model_name: x\n"
    [message] = messages({"environments/champion.yaml": unknown})
    assert "unknown key 'prompts.summarizer.model_name': allowed: version" in message


def test_the_published_schema_accepts_prompts_in_alias_files_only() -> None:
    """environments/schema.json is current, accepts prompts beside an alias target and
    rejects them beside a stage target."""
    published = json.loads(Path("environments/schema.json").read_text())
    assert published == json.loads(json.dumps(json_schema()))
    ok = yaml.safe_load(ALIAS + "prompts:\n  summarizer: 4\n")
    jsonschema.validate(ok, published)
    bad = yaml.safe_load(STAGE + "prompts:\n  summarizer: 4\n")
    try:
        jsonschema.validate(bad, published)
    except jsonschema.ValidationError:
        return
    raise AssertionError("a stage file with prompts validated against the schema")
