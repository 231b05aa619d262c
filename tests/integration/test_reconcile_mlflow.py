"""One reconcile pass against a real MLflow tracking server (SQLite, one worker)."""

from __future__ import annotations

from typing import Any

import pytest
from mlflow_gitops.adapters.mlflow.registry import MlflowRegistry
from mlflow_gitops.core.tags import ownership_tag
from mlflow_gitops.loop.reconciler import reconcile

from tests.support.builders import desired, env
from tests.support.registry_helpers import Recording, make_model, stages_of


@pytest.fixture()
def registry(mlflow_server: Any) -> Recording:
    return Recording(MlflowRegistry(mlflow_server.uri))


def test_promotion_to_production_archives_the_old_version(mlflow_client: Any, registry: Recording,
                                                         unique: str) -> None:
    """A new Production version is promoted and the previous one archived, each tagged."""
    name = f"promo-{unique}"
    make_model(mlflow_client, name, 2, {1: "Production"})
    result = reconcile(desired(env("production", "stage:Production", {name: 2}), commit="sha1"),
                       {"default": registry})
    assert result.ok
    assert stages_of(mlflow_client, name) == {1: "Archived", 2: "Production"}
    tags = mlflow_client.get_model_version(name, "2").tags
    assert tags[ownership_tag("production")] == "sha1"


def test_staging_to_production_with_new_staging_never_archives_the_mover(
        mlflow_client: Any, registry: Recording, unique: str) -> None:
    """v2 moves Staging→Production while v3 enters Staging; the write calls never archive v2."""
    name = f"move-{unique}"
    make_model(mlflow_client, name, 3, {1: "Production", 2: "Staging"})
    state = desired(env("production", "stage:Production", {name: 2}),
                    env("staging", "stage:Staging", {name: 3}))
    assert reconcile(state, {"default": registry}).ok
    transitions = [c for c in registry.calls if c[0] == "transition"]
    assert transitions == [("transition", name, 2, "Production"),
                           ("transition", name, 3, "Staging"),
                           ("transition", name, 1, "Archived")]
    assert stages_of(mlflow_client, name) == {1: "Archived", 2: "Production", 3: "Staging"}


def test_alias_is_set_then_moved(mlflow_client: Any, registry: Recording, unique: str) -> None:
    """An alias target sets the alias, and a later desired version moves it."""
    name = f"alias-{unique}"
    make_model(mlflow_client, name, 2)
    assert reconcile(desired(env("champion", "alias:champion", {name: 1})),
                     {"default": registry}).ok
    assert mlflow_client.get_registered_model(name).aliases == {"champion": "1"}
    assert reconcile(desired(env("champion", "alias:champion", {name: 2})),
                     {"default": registry}).ok
    assert mlflow_client.get_registered_model(name).aliases == {"champion": "2"}


def test_prune_respects_the_ownership_tag_and_the_allow_empty_guard(
        mlflow_client: Any, registry: Recording, unique: str) -> None:
    """prune removes the alias only from a model this environment owns; emptying the file is
    refused unless allow_empty is set."""
    owned, foreign, kept = f"owned-{unique}", f"foreign-{unique}", f"kept-{unique}"
    alias = f"prune{unique.replace('-', '')}"
    for model in (owned, kept):
        make_model(mlflow_client, model, 1)
    make_model(mlflow_client, foreign, 1, aliases={alias: 1})
    target = f"alias:{alias}"
    assert reconcile(desired(env("canary", target, {owned: 1, kept: 1})),
                     {"default": registry}).ok
    pruning = desired(env("canary", target, {kept: 1}, prune=True))
    assert reconcile(pruning, {"default": registry}).ok
    assert mlflow_client.get_registered_model(owned).aliases == {}
    assert mlflow_client.get_registered_model(foreign).aliases == {alias: "1"}  # no tag: kept

    empty = reconcile(desired(env("canary", target, {}, prune=True)), {"default": registry})
    assert not empty.ok and empty.plan.errors[0].kind == "guard"
    assert mlflow_client.get_registered_model(kept).aliases == {alias: "1"}
    allowed = reconcile(desired(env("canary", target, {}, prune=True, allow_empty=True)),
                        {"default": registry})
    assert allowed.ok
    assert mlflow_client.get_registered_model(kept).aliases == {}


def test_drift_is_reverted_with_self_heal_and_only_reported_without(
        mlflow_client: Any, registry: Recording, unique: str) -> None:
    """A manual stage change is reverted when self_heal is on and reported as OutOfSync when
    it is off."""
    import warnings

    name = f"drift-{unique}"
    make_model(mlflow_client, name, 2)
    healing = desired(env("production", "stage:Production", {name: 1}))
    assert reconcile(healing, {"default": registry}).ok
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow_client.transition_model_version_stage(name, "2", "Production",
                                                     archive_existing_versions=True)
    not_healing = desired(env("production", "stage:Production", {name: 1}, self_heal=False))
    reported = reconcile(not_healing, {"default": registry}, previous=not_healing)
    assert reported.plan.changes == ()
    assert [(d.model, d.desired, d.live) for d in reported.plan.drift] == [(name, "v1", "v2")]
    assert [r.sync for r in reported.status] == ["OutOfSync"]
    assert stages_of(mlflow_client, name) == {1: "Archived", 2: "Production"}

    healed = reconcile(healing, {"default": registry}, previous=healing)
    assert healed.ok and [r.sync for r in healed.status] == ["Synced"]
    assert stages_of(mlflow_client, name) == {1: "Production", 2: "Archived"}


def test_a_second_reconcile_makes_no_write_calls(mlflow_client: Any, registry: Recording,
                                                 unique: str) -> None:
    """Idempotence: right after a successful reconcile, the next one writes nothing."""
    name = f"idem-{unique}"
    make_model(mlflow_client, name, 3, {1: "Production"})
    state = desired(env("production", "stage:Production", {name: 2}),
                    env("staging", "stage:Staging", {name: 3}),
                    env("champion", "alias:champion", {name: 2}))
    assert reconcile(state, {"default": registry}).ok
    # 4 changes, each with its lineage tag before and its evidence record after
    # (policy/evidence.py: 3 entries, 1 exit; the alias had no previous version to leave)
    assert len(registry.calls) == 3 * 4
    registry.calls.clear()
    second = reconcile(state, {"default": registry})
    assert second.ok and registry.calls == []
    assert {r.sync for r in second.status} == {"Synced"}


def test_snapshot_reads_registered_model_tags(mlflow_client: Any, registry: Recording,
                                              unique: str) -> None:
    """The bulk snapshot carries each registered model's tags, set and deleted via the port."""
    name = f"mtags-{unique}"
    make_model(mlflow_client, name, 1)
    registry.inner.set_model_tag(name, "gitops.hold.production", '{"by": "ann"}')
    live = registry.snapshot([name]).model(name)
    assert live is not None and live.tags["gitops.hold.production"] == '{"by": "ann"}'
    registry.inner.delete_model_tag(name, "gitops.hold.production")
    live = registry.snapshot([name]).model(name)
    assert live is not None and "gitops.hold.production" not in live.tags
