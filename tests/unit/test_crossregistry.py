"""desired.crossregistry: which entries cross registries, how copies are found, and the
desired state rewritten in each registry's own names and numbers."""

from __future__ import annotations

from dataclasses import replace

from mlflow_gitops.core.model import (
    Environment,
    LiveModel,
    LiveVersion,
    ModelEntry,
    Promotion,
    Snapshot,
    SyncOptions,
    frozen_map,
)
from mlflow_gitops.core.tags import COPY_PENDING as PENDING_TAG
from mlflow_gitops.core.tags import SOURCE_VERSION as SOURCE_VERSION_TAG
from mlflow_gitops.desired.crossregistry import (
    copied_tags,
    locate,
    placeholder,
    resolve,
    routes,
    with_version,
)

from tests.support.builders import desired, env

LINEAGE = {"gitops.source.registry": "default", "gitops.source.model": "fraud",
           "gitops.source.version": "4"}


def promoted(name: str, registry: str, from_env: str, models: dict[str, int],
             target: str = "stage:Production", **names: str) -> Environment:
    base = env(name, target, models, registry=registry)
    entries = {m: ModelEntry(v, line=9, registered_name=names.get(m)) for m, v in models.items()}
    return replace(base, promotion=Promotion(from_env), models=frozen_map(entries))


def prod_snapshot(*versions: LiveVersion) -> Snapshot:
    return Snapshot("prod", frozen_map({"fraud": LiveModel("fraud", frozen_map(
        {v.version: v for v in versions}))}))


def test_only_entries_whose_chain_starts_in_another_registry_are_routed() -> None:
    """production (prod, from staging on default) and canary (prod, from production) are
    routed to default's numbers; only production copies; staging is not routed."""
    state = desired(env("staging", "stage:Staging", {"fraud": 4}),
                    promoted("production", "prod", "staging", {"fraud": 4}),
                    promoted("canary", "prod", "production", {"fraud": 4}, "alias:canary"))
    found = {r.environment: r for r in routes(state)}
    assert set(found) == {"production", "canary"}
    assert found["production"].copy_from == "default"
    assert found["canary"].copy_from is None
    assert found["canary"].origin_registry == "default"


def test_a_copy_is_found_by_its_lineage_tags_and_the_oldest_wins() -> None:
    """locate() finds default's v4 in prod by the tags, whatever number prod gave it."""
    snap = prod_snapshot(LiveVersion("fraud", 1), LiveVersion("fraud", 3, tags=frozen_map(LINEAGE)),
                         LiveVersion("fraud", 2, tags=frozen_map(LINEAGE)))
    assert locate(snap, "fraud", "default", "fraud", 4) == 2
    assert locate(snap, "fraud", "default", "fraud", 5) is None
    assert locate(snap, "fraud", "prod", "fraud", 1) == 1  # the origin registry itself


def test_placeholder_takes_the_next_number_and_inherits_tags_but_not_ownership() -> None:
    """A pending copy is numbered after the last version, marked pending, and keeps the
    source's tags except ownership."""
    state = desired(env("staging", "stage:Staging", {"fraud": 4}),
                    promoted("production", "prod", "staging", {"fraud": 4}))
    (route,) = routes(state)
    source = LiveVersion("fraud", 4, run_id="r1",
                         tags=frozen_map({"team": "risk", "gitops.env.staging": "sha"}))
    pending = placeholder(prod_snapshot(LiveVersion("fraud", 7)), route, source)
    assert pending.version == 8 and pending.run_id == "r1"
    assert pending.tags[PENDING_TAG] == "true" and pending.tags[SOURCE_VERSION_TAG] == "4"
    assert "gitops.env.staging" not in pending.tags and pending.tags["team"] == "risk"
    assert copied_tags({"gitops.source.version": "1", "a": "b"}) == {"a": "b"}
    grown = with_version(prod_snapshot(), pending)
    assert 8 in grown.models["fraud"].versions


def test_resolve_renames_by_model_name_and_renumbers_routed_entries() -> None:
    """Entries take their registry's name and number; an unresolved routed entry is left out
    and its environment does not prune this pass."""
    production = promoted("production", "prod", "staging", {"fraud": 4, "churn": 2},
                          churn="churn-eu")
    production = replace(production, sync=SyncOptions(prune=True))
    state = desired(env("staging", "stage:Staging", {"fraud": 4, "churn": 2}), production)
    out = resolve(state, {("production", "fraud"): 1}).by_name()
    assert {m: e.version for m, e in out["production"].models.items()} == {"fraud": 1}
    assert out["production"].sync.prune is False
    both = resolve(state, {("production", "fraud"): 1, ("production", "churn"): 3}).by_name()
    assert {m: e.version for m, e in both["production"].models.items()} == \
        {"fraud": 1, "churn-eu": 3}
    assert both["production"].sync.prune is True
    assert both["staging"].models["fraud"].version == 4
