"""Prompts of MLflow's prompt registry under the same control as models, against a real
MLflow 3.x tracking server: applied, healed, errors per prompt, mix-ups named."""

from __future__ import annotations

from typing import Any

import pytest
from mlflow_gitops.adapters.mlflow.registry import MlflowRegistry
from mlflow_gitops.core.model import DesiredState
from mlflow_gitops.core.tags import ownership_tag
from mlflow_gitops.desired.loader import load_texts
from mlflow_gitops.loop.reconciler import reconcile

from tests.support.envfiles import HEADER
from tests.support.registry_helpers import Recording, make_model


@pytest.fixture()
def registry(mlflow_server: Any) -> Recording:
    return Recording(MlflowRegistry(mlflow_server.uri))


@pytest.fixture()
def genai(mlflow_server: Any) -> Any:
    import mlflow

    mlflow.set_tracking_uri(mlflow_server.uri)
    mlflow.set_registry_uri(mlflow_server.uri)
    return mlflow.genai


def register(genai: Any, name: str, *templates: str) -> None:
    for template in templates:
        genai.register_prompt(name=name, template=template)


def state(alias: str, models: dict[str, int], prompts: dict[str, int],
          commit: str = "sha1") -> DesiredState:
    text = HEADER + f"target:\n  alias: {alias}\n"
    if models:
        text += "models:\n" + "".join(f"  {m}: {v}\n" for m, v in models.items())
    if prompts:
        text += "prompts:\n" + "".join(f"  {p}: {v}\n" for p, v in prompts.items())
    loaded, problems = load_texts({"environments/live.yaml": text}, commit=commit)
    assert loaded is not None, problems
    return loaded


def test_apply_points_the_prompt_alias_and_load_prompt_resolves_it(
        genai: Any, mlflow_client: Any, registry: Recording, unique: str) -> None:
    """A listed prompt version gets the alias and the lineage tag, so
    load_prompt('prompts:/name@alias') returns that version; moving the alias by hand is
    healed by the next pass."""
    name, alias = f"summarizer-{unique}", f"live{unique.replace('-', '')}"
    register(genai, name, "Summarize: {{text}}", "Summarize briefly: {{text}}")
    assert reconcile(state(alias, {}, {name: 1}), {"default": registry}).ok
    assert genai.load_prompt(f"prompts:/{name}@{alias}").version == 1
    live = registry.inner.snapshot([name]).models[name]
    assert live.is_prompt and live.versions[1].tags[ownership_tag("live")] == "sha1"

    mlflow_client.set_prompt_alias(name, alias, 2)  # a change made outside git
    healed = reconcile(state(alias, {}, {name: 1}), {"default": registry},
                       previous=state(alias, {}, {name: 1}))
    assert healed.ok and [c.kind for c in healed.plan.changes] == ["prompt"]
    assert healed.plan.changes[0].reason == "drift"
    assert genai.load_prompt(f"prompts:/{name}@{alias}").version == 1
    again = reconcile(state(alias, {}, {name: 1}), {"default": registry})
    assert not again.plan.changes and [r.kind for r in again.status] == ["prompt"]


def test_a_missing_prompt_version_is_an_error_at_its_line_and_models_still_converge(
        genai: Any, mlflow_client: Any, registry: Recording, unique: str) -> None:
    """A prompt version that does not exist is that prompt's error, with file:line; the model
    in the same file is applied all the same."""
    prompt, model, alias = f"missing-{unique}", f"model-{unique}", f"a{unique.replace('-', '')}"
    register(genai, prompt, "Hello {{name}}")
    make_model(mlflow_client, model, 1)
    result = reconcile(state(alias, {model: 1}, {prompt: 7}), {"default": registry})
    assert not result.ok
    [error] = result.errors
    assert str(error).startswith("environments/live.yaml:8: ") and "v7 does not exist" in str(
        error)
    assert mlflow_client.get_registered_model(model).aliases == {alias: "1"}


def test_a_model_listed_as_a_prompt_and_the_reverse_are_errors_naming_the_mix_up(
        genai: Any, mlflow_client: Any, registry: Recording, unique: str) -> None:
    """A registered model under prompts: and a prompt under models: are each refused with
    the mix-up named, and nothing is written for them."""
    prompt, model, alias = f"p-{unique}", f"m-{unique}", f"x{unique.replace('-', '')}"
    register(genai, prompt, "Hi {{name}}")
    make_model(mlflow_client, model, 1)
    result = reconcile(state(alias, {prompt: 1}, {model: 1}), {"default": registry})
    messages = sorted(str(e) for e in result.errors)
    assert messages == [
        f"environments/live.yaml:6: '{prompt}' is listed under models: but is a registered "
        f"prompt in registry 'default', not a model: move it under prompts:",
        f"environments/live.yaml:8: '{model}' is listed under prompts: but is a registered "
        f"model in registry 'default', not a prompt: move it under models:",
    ]
    assert not registry.calls


def test_a_converged_pass_reads_prompts_in_bulk_with_the_models(
        genai: Any, mlflow_client: Any, registry: Recording, unique: str) -> None:
    """However many prompts are listed, a converged pass reads them with one search of
    prompts and one of their versions, and writes nothing."""
    alias = f"bulk{unique.replace('-', '')}"
    prompts = {f"bulk-{unique}-{i}": 1 for i in range(4)}
    for name in prompts:
        register(genai, name, f"Prompt {name}: {{{{q}}}}")
    model = f"bulkmodel-{unique}"
    make_model(mlflow_client, model, 1)
    assert reconcile(state(alias, {model: 1}, prompts), {"default": registry}).ok
    counting = Counting(MlflowRegistry(registry.inner.tracking_uri))
    again = reconcile(state(alias, {model: 1}, prompts), {"default": counting})
    assert again.ok and not again.plan.changes
    assert counting.reads == [("models", False), ("versions", False), ("models", True),
                              ("versions", True)]


class Counting:
    """Counts the searches of a registry's snapshot: (what, prompts-only?) per page read."""

    def __init__(self, inner: MlflowRegistry):
        self.inner = inner
        self.name = inner.name
        self.reads: list[tuple[str, bool]] = []
        searcher = inner._searcher
        models, versions = searcher.models, searcher.versions

        def count(what: str, read: Any) -> Any:
            def wrapped(filter_string: str, token: str | None) -> Any:
                self.reads.append((what, "mlflow.prompt.is_prompt" in filter_string))
                return read(filter_string, token)
            return wrapped

        searcher.models = count("models", models)  # type: ignore[method-assign]
        searcher.versions = count("versions", versions)  # type: ignore[method-assign]

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.inner, attr)
