"""The planner: desired + live → the smallest ordered list of writes."""

from __future__ import annotations

from mlflow_gitops.core.plan import Verdict
from mlflow_gitops.core.tags import ownership_tag
from mlflow_gitops.planning.planner import plan

from tests.support.builders import desired, env, live


def actions(p):  # type: ignore[no-untyped-def]
    return [(c.environment, c.model, c.version, c.action, c.to_stage or c.alias) for c in p.changes]


def test_promotion_archives_the_previous_production_version() -> None:
    """A new Production version is promoted first, then the old one is archived."""
    p = plan(desired(env("production", "stage:Production", {"m": 2})),
             {"default": live({"m": {1: "Production", 2: "Staging"}})})
    assert actions(p) == [("production", "m", 2, "promote", "Production"),
                          ("production", "m", 1, "archive", "Archived")]


def test_archive_previous_false_moves_leaver_to_none() -> None:
    """With archive_previous: false the leaving version goes to stage None."""
    p = plan(desired(env("production", "stage:Production", {"m": 2}, archive_previous=False)),
             {"default": live({"m": {1: "Production", 2: "None"}})})
    assert actions(p)[-1] == ("production", "m", 1, "unstage", "None")


def test_staging_to_production_move_is_never_archived() -> None:
    """v2 moving Staging→Production with a new Staging v3: Production first, v2 not archived."""
    p = plan(desired(env("production", "stage:Production", {"m": 2}),
                     env("staging", "stage:Staging", {"m": 3})),
             {"default": live({"m": {1: "Production", 2: "Staging", 3: "None"}})})
    assert actions(p) == [("production", "m", 2, "promote", "Production"),
                          ("staging", "m", 3, "promote", "Staging"),
                          ("production", "m", 1, "archive", "Archived")]


def test_alias_is_set_with_one_change() -> None:
    """An alias target moves the alias in one call, recording where it pointed."""
    p = plan(desired(env("champion", "alias:champion", {"m": 3})),
             {"default": live({"m": {2: "None", 3: "None"}}, {"m": {"champion": 2}})})
    assert actions(p) == [("champion", "m", 3, "set_alias", "champion")]
    assert p.changes[0].previous_version == 2


def test_converged_state_plans_nothing() -> None:
    """Live equal to desired yields an empty plan."""
    p = plan(desired(env("production", "stage:Production", {"m": 1}),
                     env("champion", "alias:champion", {"m": 1})),
             {"default": live({"m": {1: "Production"}}, {"m": {"champion": 1}})})
    assert p.changes == () and p.errors == ()


def test_unlisted_models_are_never_touched() -> None:
    """A model no file lists keeps its stages even when it sits in a managed stage."""
    p = plan(desired(env("production", "stage:Production", {"m": 1})),
             {"default": live({"m": {1: "Production"}, "other": {4: "Production"}})})
    assert p.changes == ()


def test_missing_version_is_an_error_value_and_others_converge() -> None:
    """A missing version is reported for its model; the other model is still planned."""
    p = plan(desired(env("production", "stage:Production", {"a": 9, "b": 2})),
             {"default": live({"a": {1: "Production"}, "b": {1: "Production", 2: "None"}})})
    assert [(e.model, e.kind) for e in p.errors] == [("a", "missing_version")]
    assert "a v9 does not exist" in p.errors[0].message and "v1" in p.errors[0].message
    assert {c.model for c in p.changes} == {"b"}


def test_unregistered_model_is_reported() -> None:
    """A model the registry does not know is an error naming the model."""
    p = plan(desired(env("staging", "stage:Staging", {"ghost": 1})), {"default": live({})})
    assert p.errors[0].message.startswith("registered model 'ghost' does not exist")


def test_prune_only_touches_versions_with_the_ownership_tag() -> None:
    """prune demotes a removed model's versions only where this environment's tag is set."""
    tag = {ownership_tag("production"): "abc"}
    p = plan(desired(env("production", "stage:Production", {"kept": 1}, prune=True)),
             {"default": live({"kept": {1: "Production"}, "owned": {3: "Production"},
                               "foreign": {5: "Production"}}, tags={("owned", 3): tag})})
    assert actions(p) == [("production", "owned", 3, "archive", "Archived")]
    assert p.changes[0].reason == "prune"


def test_prune_of_every_model_needs_allow_empty() -> None:
    """An empty pruning file is refused unless allow_empty is set."""
    tag = {ownership_tag("champion"): "abc"}
    snap = live({"m": {3: "None"}}, {"m": {"champion": 3}}, tags={("m", 3): tag})
    refused = plan(desired(env("champion", "alias:champion", {}, prune=True)), {"default": snap})
    assert refused.changes == () and refused.errors[0].kind == "guard"
    assert "allow_empty" in refused.errors[0].message
    allowed = plan(desired(env("champion", "alias:champion", {}, prune=True, allow_empty=True)),
                   {"default": snap})
    assert actions(allowed) == [("champion", "m", 3, "delete_alias", "champion")]


def test_self_heal_off_reports_drift_of_unchanged_entries() -> None:
    """With self_heal false, drift of an entry git did not change is reported, not applied."""
    state = desired(env("production", "stage:Production", {"m": 1}, self_heal=False))
    drifted = {"default": live({"m": {1: "Archived", 2: "Production"}})}
    p = plan(state, drifted, previous=state)
    assert p.changes == ()
    assert [(d.model, d.desired, d.live) for d in p.drift] == [("m", "v1", "v2")]


def test_self_heal_off_still_applies_changed_git_entries() -> None:
    """With self_heal false, an entry git changed since the last apply is applied."""
    before = desired(env("production", "stage:Production", {"m": 1}, self_heal=False))
    after = desired(env("production", "stage:Production", {"m": 2}, self_heal=False))
    p = plan(after, {"default": live({"m": {1: "Production", 2: "Staging"}})}, previous=before)
    assert actions(p) == [("production", "m", 2, "promote", "Production"),
                          ("production", "m", 1, "archive", "Archived")]


def test_refused_gate_blocks_only_that_environment() -> None:
    """A refused promotion writes nothing for that env/model; other environments proceed."""
    from dataclasses import replace

    from mlflow_gitops.core.model import Promotion

    prod = replace(env("production", "stage:Production", {"m": 2}), promotion=Promotion())
    p = plan(desired(prod, env("champion", "alias:champion", {"m": 2})),
             {"default": live({"m": {1: "Production", 2: "Staging"}})},
             check=lambda e, m, v, lm: Verdict(False, message="m v2 not promoted: nope")
             if e.promotion else Verdict(True))  # the check decides what it guards
    assert actions(p) == [("champion", "m", 2, "set_alias", "champion")]
    assert [(e.environment, e.kind) for e in p.errors] == [("production", "gate")]


def test_unreachable_registry_is_an_error_per_model() -> None:
    """A registry without a snapshot makes its models errors, not a crash."""
    p = plan(desired(env("production", "stage:Production", {"m": 1}, registry="prod")), {})
    assert [(e.model, e.kind) for e in p.errors] == [("m", "registry")]


def test_a_stage_is_never_emptied_by_another_environment() -> None:
    """Staging may not take Production's only version while production is blocked (here a
    missing version): staging is refused with the reason and Production keeps serving."""
    p = plan(desired(env("production", "stage:Production", {"m": 9}),
                     env("staging", "stage:Staging", {"m": 4})),
             {"default": live({"m": {4: "Production", 5: "Staging"}})})
    assert p.changes == ()
    assert sorted((e.environment, e.kind) for e in p.errors) == [
        ("production", "missing_version"), ("staging", "guard")]
    assert "serves in production, which is not converging" in p.errors[-1].message


def test_prune_guard_covers_a_file_whose_models_all_fail_to_resolve() -> None:
    """A pruning file that lists only unknown models (a typo) is treated as emptied."""
    tag = {ownership_tag("production"): "abc"}
    p = plan(desired(env("production", "stage:Production", {"fraud-detecter": 3}, prune=True)),
             {"default": live({"fraud-detector": {3: "Production"}}, tags={
                 ("fraud-detector", 3): tag})})
    assert p.changes == ()
    assert {e.kind for e in p.errors} == {"missing_version", "guard"}
