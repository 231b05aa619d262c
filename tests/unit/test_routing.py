"""Promotion across registries as pure phases: route asks for copies, settle puts them in."""

from __future__ import annotations

from dataclasses import replace

from mlflow_gitops.core import tags
from mlflow_gitops.core.model import (
    LiveModel,
    LiveVersion,
    ModelEntry,
    Promotion,
    Snapshot,
    frozen_map,
)
from mlflow_gitops.core.plan import Verdict
from mlflow_gitops.loop.executor import CopyFailed, MadeCopy
from mlflow_gitops.loop.routing import route, settle

from tests.support.builders import desired, env, live

STAGING = env("staging", "stage:Staging", {"fraud": 4})
PRODUCTION = replace(env("production", "stage:Production", {}, registry="prod"),
                     promotion=Promotion("staging"),
                     models=frozen_map({"fraud": ModelEntry(4, line=9)}))
STATE = desired(STAGING, PRODUCTION)


def snapshots(prod_tags: dict[str, str] | None = None) -> dict[str, Snapshot]:
    default = live({"fraud": {4: "Staging"}})
    prod = Snapshot("prod", frozen_map({"fraud": LiveModel(
        "fraud", frozen_map({1: LiveVersion("fraud", 1, "Archived")}),
        tags=frozen_map(prod_tags or {}))}))
    return {"default": default, "prod": prod}


def test_a_missing_copy_is_a_placeholder_and_a_request_nothing_is_written() -> None:
    """route stands a placeholder (the next number) in for the copy and asks for it; without
    `copy` (a dry run) it asks for nothing; the caller's snapshots stay as they were."""
    given = snapshots()
    routing = route(STATE, None, given, check=None, copy=True)
    (request,) = routing.requests
    assert (request.registry, request.model, request.placeholder) == ("prod", "fraud", 2)
    assert (request.source_registry, request.source_model, request.source_version) == \
        ("default", "fraud", 4)
    assert dict(request.tags)[tags.SOURCE_VERSION] == "4"
    assert tags.COPY_PENDING not in dict(request.tags)
    placeholder = routing.snapshots["prod"].model("fraud").versions[2]  # type: ignore[union-attr]
    assert tags.COPY_PENDING in placeholder.tags
    assert 2 not in given["prod"].model("fraud").versions  # type: ignore[union-attr]
    assert route(STATE, None, given, check=None, copy=False).requests == ()


def test_a_refusing_gate_or_a_hold_asks_for_no_copy() -> None:
    """The policy's refusal and a person's hold keep the copy from being made."""
    def refuse(*_: object) -> Verdict:
        return Verdict(False, message="no")
    assert route(STATE, None, snapshots(), check=refuse, copy=True).requests == ()
    held = snapshots({tags.hold_tag("production"): "{}"})
    assert route(STATE, None, held, check=None, copy=True).requests == ()


def test_settle_puts_the_made_copy_in_and_drops_a_failed_one_with_its_error() -> None:
    """A made copy replaces its placeholder in the routed desired state and is reported as
    copied; a failed copy drops the entry and names both registries."""
    routing = route(STATE, None, snapshots(), check=None, copy=True)
    (request,) = routing.requests
    made = LiveVersion("fraud", 7, "None", tags=frozen_map(dict(request.tags)))
    routed = settle(routing, [MadeCopy(request, made)])
    assert routed.desired.by_name()["production"].models["fraud"].version == 7
    assert [(c.registry, c.version, c.source_version) for c in routed.copies] == [("prod", 7, 4)]
    assert 2 not in routed.snapshots["prod"].model("fraud").versions  # type: ignore[union-attr]

    failed = settle(routing, failed=[CopyFailed(request, "quota exceeded")])
    assert "fraud" not in failed.desired.by_name()["production"].models
    (error,) = failed.errors
    assert "from registry 'default' to 'prod' failed: quota exceeded" in error.message
    assert 2 not in failed.snapshots["prod"].model("fraud").versions  # type: ignore[union-attr]
