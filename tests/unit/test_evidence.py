"""The promotion policy's evidence (mlflow_gitops.policy.evidence): what the executor records
and when, how records are read, and that only applied promotions ever satisfy `from`."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mlflow_gitops.core import tags
from mlflow_gitops.core.errors import TransientRegistryError
from mlflow_gitops.core.facts import PassFacts
from mlflow_gitops.core.model import Gate, LiveVersion, Promotion, frozen_map
from mlflow_gitops.core.plan import Change
from mlflow_gitops.loop.executor import execute
from mlflow_gitops.loop.reconciler import reconcile
from mlflow_gitops.planning.planner import plan
from mlflow_gitops.policy import evidence
from mlflow_gitops.policy.facts import make_policy

from tests.support.builders import desired, env, live
from tests.support.memory_registry import MemoryRegistry

AT = 1_700_000_000.0


def change(action: str, **kw: object) -> Change:
    return Change("default", "production", "m", 2, action, "git",  # type: ignore[arg-type]
                  "environments/production.yaml", 7, **kw)  # type: ignore[arg-type]


def test_only_promotions_write_an_applied_record_and_moves_out_write_an_exit() -> None:
    """promote and set_alias record the entry (set_alias also the exit of the version the
    alias left); archive, unstage and delete_alias only ever record an exit."""
    record = json.dumps({"at": AT, "commit": "abc"})
    assert evidence.writes_for(change("promote", to_stage="Production"), "abc", AT) == (
        evidence.TagWrite("m", 2, "gitops.applied.production", record),)
    assert evidence.writes_for(change("set_alias", alias="champion", previous_version=1),
                               "abc", AT) == (
        evidence.TagWrite("m", 2, "gitops.applied.production", record),
        evidence.TagWrite("m", 1, "gitops.left.production", f"{AT:.3f}"))
    for action in ("archive", "unstage", "delete_alias"):
        for reason in ("drift", "prune", "replaced", "git"):
            writes = evidence.writes_for(replace(change(action), reason=reason), "abc", AT)
            assert [w.key for w in writes] == ["gitops.left.production"]


def test_records_are_read_back_and_broken_ones_are_no_evidence() -> None:
    """A record reads back as its commit, entry and exit; garbage, a wrong shape or a record
    dated before the version was created is no evidence."""
    tags = {"gitops.applied.staging": json.dumps({"commit": "c" * 40, "at": AT}),
            "gitops.left.staging": str(AT + 60)}
    stint = evidence.parse(tags, "staging")
    assert stint == evidence.Stint("staging", "c" * 40, AT, AT + 60)
    assert stint is not None and stint.ended == AT + 60
    assert evidence.parse(tags, "production") is None
    for bad in ("not json", "[]", '{"commit": 1, "at": 5}', '{"commit": "c", "at": true}',
                '{"commit": "c", "at": "5"}', '{"commit": "c", "at": -1}',
                '{"commit": "c", "at": NaN}'):
        assert evidence.parse({"gitops.applied.staging": bad}, "staging") is None
    assert evidence.parse(tags, "staging", created_ms=int((AT + 3600) * 1000)) is None
    stale_exit = {**tags, "gitops.left.staging": str(AT - 60)}
    assert evidence.parse(stale_exit, "staging").ended is None  # type: ignore[union-attr]


@given(st.dictionaries(st.sampled_from(["gitops.applied.staging", "gitops.left.staging"]),
                       st.text(max_size=40)))
def test_reading_any_tag_values_never_raises(tags: dict[str, str]) -> None:
    """Whatever the tags hold, reading them gives a record or None, never an exception."""
    evidence.parse(tags, "staging")


class FailingTransition(MemoryRegistry):
    def transition_stage(self, model: str, version: int, stage: str) -> None:
        raise TransientRegistryError("registry went away")


def test_evidence_is_written_after_the_change_and_never_for_a_failed_one() -> None:
    """The record follows the transition it describes; when the transition fails, no record
    is written (the lineage tag, written first, claims nothing about serving)."""
    snapshot = live({"m": {1: "Production", 2: "None"}})
    registry = MemoryRegistry.from_snapshot(snapshot)
    state = desired(env("production", "stage:Production", {"m": 2}), commit="abc123")
    assert execute(plan(state, {"default": snapshot}), {"default": registry}).ok
    keys = [c[3] if c[0] == "tag" else c[0] for c in registry.calls]
    assert keys == ["gitops.env.production", "transition", "gitops.applied.production",
                    "gitops.env.production", "transition", "gitops.left.production"]

    failing = FailingTransition.from_snapshot(snapshot)
    result = execute(plan(state, {"default": snapshot}), {"default": failing})
    assert not result.ok
    assert not any(k.startswith(("gitops.applied.", "gitops.left."))
                   for tags in failing.tags.values() for k in tags)


# -- the property: nothing but an applied promotion satisfies `from` -----------------------

STAGING_GATE = Promotion(None, None, (Gate(tag="ok", equals="yes"),))
STEP = st.tuples(st.none() | st.integers(1, 4),  # staging.yaml's version
                 st.none() | st.integers(1, 4),  # production.yaml's version
                 st.booleans(),  # did the controller see this commit (False: reverted/raced)
                 st.none() | st.integers(1, 4))  # someone puts it into production by hand
Step = tuple[int | None, int | None, bool, int | None]


def serving(registry: MemoryRegistry, target: str) -> set[int]:
    if target == "alias":
        champion = registry.aliases["m"].get("champion")
        return {champion} if champion is not None else set()
    return {v for v, stage in registry.stages["m"].items() if stage == "Production"}


def run_world(steps: list[Step], salt: str, target: str
              ) -> list[tuple[dict[int, str], set[int]]]:
    """Drive planner, policy and executor over an in-memory registry through `steps`, with
    production on @champion or on stage Production; check that the controller only ever
    puts into production a version that was in Staging at the end of an earlier pass
    (hand placements and self-heal included). Returns the registry after each step."""
    snapshot = live({"m": {v: "None" for v in range(1, 5)}},
                    tags={("m", 1): {"ok": "yes"}, ("m", 2): {"ok": "yes"}})
    registry = MemoryRegistry.from_snapshot(snapshot)
    was_staged: set[int] = set()
    seen = []
    for index, (staged, served, applied, by_hand) in enumerate(steps):
        if by_hand is not None and target == "alias":
            registry.aliases["m"]["champion"] = by_hand
        elif by_hand is not None:
            registry.stages["m"][by_hand] = "Production"
        if applied:
            before = serving(registry, target)
            staging = replace(env("staging", "stage:Staging",
                                  {"m": staged} if staged else {}), promotion=STAGING_GATE)
            production = replace(env("production", "alias:champion" if target == "alias"
                                     else "stage:Production", {"m": served} if served else {}),
                                 promotion=Promotion("staging", None, ()))
            reconcile(desired(staging, production, commit=f"{salt}{index:02d}" * 4),
                      {"default": registry}, policy=make_policy())
            entered = serving(registry, target) - before
            assert entered <= was_staged, (entered, was_staged, steps)
            was_staged |= {v for v, s in registry.stages["m"].items() if s == "Staging"}
        seen.append((dict(registry.stages["m"]), serving(registry, target)))
    return seen


@settings(max_examples=80, deadline=None)
@given(st.lists(STEP, max_size=8), st.sampled_from(["alias", "stage"]))
def test_no_refused_reverted_or_unapplied_assignment_satisfies_from(
        steps: list[Step], target: str) -> None:
    """Over any sequence of commits (some never seen by the controller, some refused by
    staging's gate), hand placements into production and self-heal reverting them, the
    controller only ever promotes into production a version staging actually held, so
    versions 3 and 4, which staging refuses, never reach production through it."""
    run_world(steps, "a", target)


@pytest.mark.parametrize(("target", "steps", "never"), [
    # staging assigns v2 and is reverted before the controller sees it; production takes v2
    ("alias", [(1, None, True, None), (2, None, False, None), (1, 2, True, None),
               (1, 2, True, None)], 2),
    # one commit assigns v3 to staging (whose gate refuses it) and to production, twice
    ("alias", [(3, 3, True, None), (3, 3, True, None)], 3),
    # v3 put into Production by hand, archived by self-heal, then assign → revert → assign
    ("stage", [(1, None, True, None), (2, 1, True, None), (2, 1, True, 3), (2, 3, True, None),
               (2, 1, True, None), (2, 3, True, None)], 3),
    # stage targets: staging → v2 never applied, then production → v2 (and v2 twice at once)
    ("stage", [(1, None, True, None), (2, None, False, None), (1, 2, True, None),
               (1, 2, True, None)], 2),
    ("stage", [(1, None, True, None), (3, 1, True, None), (3, 3, True, None),
               (3, 3, True, None)], 3),
    # the same with @champion moved to v3 by hand and moved back by self-heal
    ("alias", [(1, None, True, None), (1, 1, True, None), (1, 1, True, 3), (1, 3, True, None),
               (1, 1, True, None), (1, 3, True, None)], 3),
])
def test_the_known_bypasses_never_promote(target: str, steps: list[Step], never: int) -> None:
    """Each bypass of the issue, replayed through planner, policy and executor, leaves the
    version out of production."""
    assert all(never not in served for _, served in run_world(steps, "a", target))


def test_the_honest_path_promotes_one_pass_after_staging() -> None:
    """Staging and production assigned in one commit: the first pass applies staging only,
    the next one promotes (staging then holds it and the controller recorded it)."""
    seen = run_world([(2, 2, True, None), (2, 2, True, None)], "a", "alias")
    assert [served for _, served in seen] == [set(), {2}]


@settings(max_examples=30, deadline=None)
@given(st.lists(STEP, max_size=6), st.sampled_from(["alias", "stage"]))
def test_commit_identity_never_changes_an_outcome(steps: list[Step], target: str) -> None:
    """The same sequence under other commit ids (and so other commit dates) ends in the
    same registry after every step: commits are labels, not evidence."""
    assert run_world(steps, "a", target) == run_world(steps, "f", target)


@pytest.mark.parametrize("created_ms", [None, int(AT * 1000)])
def test_a_version_record_is_read_with_its_creation_time(created_ms: int | None) -> None:
    """evidence.read takes the creation time from the live version."""
    tags = frozen_map({"gitops.applied.qa": json.dumps({"commit": "c", "at": AT + 1})})
    version = LiveVersion("m", 1, tags=tags, created_ms=created_ms)
    assert evidence.read(version, "qa") == evidence.Stint("qa", "c", AT + 1)


def test_a_copy_never_inherits_the_source_versions_records() -> None:
    """A cross-registry copy starts with no evidence: the source's apply records describe
    what the controller did to the source version, not to the copy."""
    from mlflow_gitops.desired.crossregistry import copied_tags

    tags = {"team": "risk", "gitops.applied.production": '{"commit": "c", "at": 1}',
            "gitops.left.staging": "1", "gitops.env.staging": "c"}
    assert copied_tags(tags) == {"team": "risk"}


def test_from_evidence_belongs_to_the_very_version_not_to_a_name_a_file_maps() -> None:
    """staging.yaml (no CODEOWNERS) maps the key `fraud` to another registered model whose
    v1 holds Staging and soaked long: production's fraud v1 gets no evidence from it."""
    from mlflow_gitops.core.model import ModelEntry

    record = json.dumps({"commit": "c" * 40, "at": AT})
    snapshot = live({"fraud": {1: "None"}, "other": {1: "Staging"}},
                    tags={("other", 1): {"gitops.applied.staging": record}})
    staging = replace(env("staging", "stage:Staging", {}), models=frozen_map(
        {"fraud": ModelEntry(1, 10, registered_name="other")}))
    production = replace(env("production", "alias:champion", {"fraud": 1}),
                         promotion=Promotion("staging", None, ()))
    check = make_policy(lambda: AT + 90 * 86400)(desired(staging, production),
                                                 PassFacts({"default": snapshot}))
    assert check is not None
    fraud = snapshot.model("fraud")
    assert fraud is not None
    verdict = check(production, "fraud", 1, fraud)
    assert not verdict.allowed and "never in staging" in verdict.message
    other = snapshot.model("other")
    assert other is not None
    assert check(replace(production, models=frozen_map({"other": ModelEntry(1, 10)})),
                 "other", 1, other).allowed


def test_a_record_of_another_environment_is_no_rollback() -> None:
    """A version the controller applied to staging (or canary) has no exemption in
    production: only production's own record proves it served there."""
    record = json.dumps({"commit": "c" * 40, "at": AT})
    snapshot = live({"m": {1: "None"}},
                    tags={("m", 1): {"gitops.applied.staging": record,
                                     "gitops.applied.canary": record}})
    production = replace(env("production", "alias:champion", {"m": 1}),
                         promotion=Promotion(None, None, (Gate(tag="ok", equals="yes"),)))
    check = make_policy(lambda: AT + 60)(desired(production), PassFacts({"default": snapshot}))
    model = snapshot.model("m")
    assert check is not None and model is not None
    verdict = check(production, "m", 1, model)
    assert not verdict.allowed and "tag ok is missing" in verdict.message


def test_every_valid_environment_name_fits_the_evidence_tag_keys() -> None:
    """The longest environment name validation accepts still makes MLflow-valid evidence tag
    keys (at most 250 characters); one character more is refused up front."""
    from mlflow_gitops.desired.fields import MAX_TAG_KEY_LENGTH, environment_name_problem

    longest = next(n for n in range(MAX_TAG_KEY_LENGTH, 0, -1)
                   if environment_name_problem("e" * n) is None)
    for key in (tags.applied_tag("e" * longest), tags.left_tag("e" * longest)):
        assert len(key) <= MAX_TAG_KEY_LENGTH
    assert environment_name_problem("e" * (longest + 1)) is not None
