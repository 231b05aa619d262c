"""A rejection follows a version across registry copies, and a hold left behind by a
renamed environment file is said, in the pure planner and its renderings."""

from __future__ import annotations

from mlflow_gitops.core.model import Snapshot
from mlflow_gitops.core.tags import COPY_REJECTED, REJECTED, hold_tag
from mlflow_gitops.planning.planner import plan
from mlflow_gitops.planning.render import render_json, render_markdown, render_text
from mlflow_gitops.policy.controls import follow_rejections, is_rejected, make_control

from tests.support.builders import desired, env, live

REJECTION = make_control("bob", "leaks PII", 0.0).to_json()
HOLD = make_control("ann", "INC-42", 0.0).to_json()


def lineage(version: int) -> dict[str, str]:
    return {"gitops.source.registry": "default", "gitops.source.model": "m",
            "gitops.source.version": str(version)}


def two_registries(source_tags: dict[int, dict[str, str]] | None = None,
                   copy_tags: dict[int, dict[str, str]] | None = None) -> dict[str, Snapshot]:
    """default has m v1-v2; prod has copies v1 (of v1, archived) and v2 (of v2, serving)."""
    source = live({"m": {1: "None", 2: "Staging"}},
                  tags={("m", v): t for v, t in (source_tags or {}).items()})
    copies = {("m", 1): {**lineage(1), "gitops.env.production": "old"},
              ("m", 2): {**lineage(2), "gitops.env.production": "new"}}
    for v, extra in (copy_tags or {}).items():
        copies[("m", v)] = {**copies[("m", v)], **extra}
    target = live({"m": {1: "Archived", 2: "Production"}}, tags=copies, registry="prod")
    return {"default": source, "prod": target}


def test_a_copy_of_a_version_rejected_in_its_source_registry_is_rejected() -> None:
    """The copy in prod of default's rejected v1 reads as rejected, naming where the tag is."""
    snaps = follow_rejections(two_registries(source_tags={1: {REJECTED: REJECTION}}))
    copy = snaps["prod"].models["m"].versions[1]
    rejection = is_rejected(copy)
    assert rejection is not None and rejection.placed == ("default", "m", 1)
    assert rejection.reason == "leaks PII" and rejection.by == "bob"
    assert is_rejected(snaps["prod"].models["m"].versions[2]) is None


def test_rejecting_a_copy_rejects_its_source_and_untouched_snapshots_stay_the_same() -> None:
    """A rejection placed on the prod copy also rejects default's v2; no rejection anywhere
    leaves the very same snapshots (nothing copied on a pass without rejections)."""
    snaps = two_registries(copy_tags={2: {REJECTED: REJECTION}})
    followed = follow_rejections(snaps)
    source = followed["default"].models["m"].versions[2]
    assert COPY_REJECTED in source.tags
    rejection = is_rejected(source)
    assert rejection is not None and rejection.placed == ("prod", "m", 2)
    assert is_rejected(followed["default"].models["m"].versions[1]) is None
    clean = two_registries()
    assert follow_rejections(clean) is clean


def test_a_revert_onto_a_copy_rejected_in_the_source_registry_is_refused() -> None:
    """production (on prod) going back to the copy of default's v1, rejected after the copy
    was made, is refused with the source's reason and the command that lifts it there."""
    snaps = two_registries(source_tags={1: {REJECTED: REJECTION}})
    state = desired(env("staging", "stage:Staging", {"m": 2}),
                    env("production", "stage:Production", {"m": 1}, registry="prod"))
    p = plan(state, snaps)
    assert p.changes == ()
    [error] = p.errors
    assert (error.environment, error.kind) == ("production", "gate")
    assert "m v1 is the same version as m v1 of registry 'default'" in error.message
    assert "by bob" in error.message and "leaks PII" in error.message
    assert "mlflow-gitops reject m 1 --registry default --undo" in error.message


def test_a_hold_of_an_environment_no_file_defines_is_warned_about() -> None:
    """prod.yaml renamed to production.yaml: the hold gitops.hold.prod no longer applies;
    plan says so in text, markdown and JSON, and a hold of a defined environment is quiet."""
    snap = live({"m": {1: "Production"}},
                model_tags={"m": {hold_tag("prod"): HOLD, hold_tag("staging"): HOLD}})
    state = desired(env("production", "stage:Production", {"m": 1}),
                    env("staging", "stage:Staging", {}))
    p = plan(state, {"default": snap})
    [warning] = p.warnings
    assert warning.startswith("hold on m for 'prod' no longer applies: no environment file "
                              "named prod.yaml — release it (`mlflow-gitops release m --env "
                              "prod --registry default`) or rename the file back")
    assert "INC-42" in warning
    assert f"warning: {warning}" in render_text(p)
    assert f"- ⚠️ {warning}" in render_markdown(p)
    assert '"warnings": [' in render_json(p)
    quiet = plan(desired(env("prod", "stage:Production", {"m": 1})), {"default": snap})
    assert [w for w in quiet.warnings if "'prod'" in w] == []


def test_the_pass_facts_carry_a_rejection_across_copies_for_every_phase() -> None:
    """gather marks the prod copy of default's rejected v1 in the facts themselves, so
    routing and verification (which read the facts, not the planner's view) see it too."""
    from mlflow_gitops.loop.facts import gather

    from tests.support.memory_registry import MemoryRegistry

    snaps = two_registries(source_tags={1: {REJECTED: REJECTION}})
    registries = {name: MemoryRegistry.from_snapshot(s) for name, s in snaps.items()}
    state = desired(env("staging", "stage:Staging", {"m": 2}),
                    env("production", "stage:Production", {"m": 2}, registry="prod"))
    facts = gather(state, registries, gates=False)
    copy = facts.snapshots["prod"].models["m"].versions[1]
    rejection = is_rejected(copy)
    assert rejection is not None and rejection.placed == ("default", "m", 1)
    assert is_rejected(facts.snapshots["prod"].models["m"].versions[2]) is None
