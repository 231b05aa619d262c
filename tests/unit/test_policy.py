"""mlflow_gitops.policy.rules: every promotion rule over plain values (no registry, no git)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from mlflow_gitops.core.model import (
    Environment,
    Gate,
    LiveModel,
    LiveVersion,
    ModelEntry,
    Promotion,
    Target,
    frozen_map,
    ownership_tag,
)
from mlflow_gitops.policy.rules import (
    Assignment,
    FromFacts,
    PolicyFacts,
    RunFacts,
    duration,
    evaluate,
    held_before,
    soaked,
)

NOW = 1_700_000_000.0
HOUR = 3600.0
RUN = "3f2a9c1d5e6f47a8b9c0d1e2f3a4b5c6"


def production(*gates: Gate, from_env: str | None = "staging",
               min_soak: int | None = None) -> Environment:
    return Environment(
        name="production", file="environments/production.yaml",
        target=Target("stage", "Production"),
        promotion=Promotion(from_env, min_soak, tuple(gates), line=7),
        models=frozen_map({"fraud-detector": ModelEntry(4, line=12)}))


def live(version: int = 4, status: str = "READY", **tags: str) -> LiveModel:
    return LiveModel("fraud-detector", frozen_map({
        version: LiveVersion("fraud-detector", version, status=status, run_id=RUN,
                             tags=frozen_map(tags))}))


def staging(holds: bool = True, in_desired: bool = False, history: tuple = (),
            live_since: float | None = None) -> FromFacts:
    return FromFacts("staging", "environments/staging.yaml", "stage Staging", holds,
                     in_desired, history, live_since)


def facts(metrics: dict[str, float] | None = None, source: FromFacts | None = None,
          own: tuple[Assignment, ...] = (), run_id: str | None = RUN, **kw: object
          ) -> PolicyFacts:
    return PolicyFacts(now=NOW, version=4, run=RunFacts(run_id, metrics),
                       source=source if source is not None else staging(),
                       own_history=own, **kw)  # type: ignore[arg-type]


def check(env: Environment, model: LiveModel, f: PolicyFacts):  # type: ignore[no-untyped-def]
    return evaluate(env, "fraud-detector", 4, model, f)


def test_metric_below_min_is_refused_naming_value_threshold_and_run() -> None:
    """A metric under `min` refuses the promotion with the value, the bound and the run."""
    verdict = check(production(Gate(metric="accuracy", min=0.9)), live(),
                    facts({"accuracy": 0.81}))
    assert not verdict.allowed
    assert verdict.message == "fraud-detector v4 not promoted: accuracy 0.81 < min 0.9 " \
                              "(run 3f2a9c1d…)"
    gate = verdict.gates[-1]
    assert (gate.name, gate.passed, gate.actual, gate.required) == \
        ("metric accuracy", False, "0.81", ">= 0.9")


def test_metric_above_max_is_refused() -> None:
    """A metric over `max` refuses the promotion with the value and the bound."""
    verdict = check(production(Gate(metric="latency_p95_ms", max=120)), live(),
                    facts({"latency_p95_ms": 131.5}))
    assert not verdict.allowed
    assert "latency_p95_ms 131.5 > max 120 (run 3f2a9c1d…)" in verdict.message


def test_missing_metric_and_missing_run_fail_with_their_reason() -> None:
    """A run without the metric, and a version without a run, each fail the gate saying so."""
    gate = Gate(metric="accuracy", min=0.9)
    no_metric = check(production(gate), live(), facts({"loss": 0.1}))
    assert "run 3f2a9c1d… has no metric 'accuracy' (gate min 0.9)" in no_metric.message
    no_run = check(production(gate), live(), facts(None, run_id=None))
    assert "accuracy: the version has no source run (gate min 0.9)" in no_run.message


def test_unreadable_run_fails_the_gate_with_the_error() -> None:
    """A run that could not be read fails the metric gate and carries the error as detail."""
    f = PolicyFacts(now=NOW, version=4, run=RunFacts(RUN, None, "registry unreachable"),
                    source=staging())
    verdict = check(production(Gate(metric="accuracy", min=0.9)), live(), f)
    assert "could not be read (registry unreachable)" in verdict.message
    assert verdict.gates[-1].detail == "registry unreachable"


def test_tag_gates_equals_and_exists() -> None:
    """`equals` compares the tag's value; `exists` wants the tag present; both name the tag."""
    env = production(Gate(tag="validation_status", equals="passed"),
                     Gate(tag="model_card", exists=True))
    wrong = check(env, live(validation_status="failed"), facts())
    assert "tag validation_status is 'failed', required 'passed'" in wrong.message
    assert "tag model_card is missing, required present" in wrong.message
    ok = check(env, live(validation_status="passed", model_card="x"), facts())
    assert ok.allowed and all(g.passed for g in ok.gates)


def test_never_in_from_is_refused() -> None:
    """A version not live in `from`, not assigned there now and not in its history is refused."""
    verdict = check(production(), live(), facts(source=staging(holds=False)))
    assert not verdict.allowed
    assert "never in staging: not live there, not assigned in environments/staging.yaml" \
           in verdict.message


def test_from_passes_by_desired_state_or_history() -> None:
    """Assigned in `from` in the same desired state, or at an earlier commit, satisfies from."""
    assert check(production(), live(),
                 facts(source=staging(holds=False, in_desired=True))).allowed
    past = (Assignment("bbb", NOW - HOUR, 5), Assignment("aaa", NOW - 2 * HOUR, 4))
    verdict = check(production(), live(), facts(source=staging(holds=False, history=past)))
    assert verdict.allowed
    assert verdict.gates[1].actual == "assigned in staging at commit aaa"


def test_not_soaked_long_enough_is_refused_with_the_time_held() -> None:
    """Three hours in staging against a 24h min_soak is refused, naming both durations."""
    history = (Assignment("c3" * 20, NOW - 3 * HOUR, 4), Assignment("b2" * 20, NOW - 50 * HOUR, 3))
    verdict = check(production(min_soak=86400), live(), facts(source=staging(history=history)))
    assert not verdict.allowed
    assert "3h in staging (since commit c3c3c3c) < min_soak 1d" in verdict.message


def test_soak_counts_one_continuous_stretch_and_ends_when_replaced() -> None:
    """A version replaced in `from` soaked from its assigning commit to its replacing one."""
    history = (Assignment("new", NOW - HOUR, 5), Assignment("old", NOW - 30 * HOUR, 4))
    held, basis = soaked(4, staging(holds=False, history=history), NOW)
    assert held == 29 * HOUR and basis == "from commit old to new"


def test_soak_without_history_uses_the_live_stage_time() -> None:
    """With no git history, soak counts from the from-environment's live stage update."""
    source = staging(live_since=NOW - 25 * HOUR)
    assert check(production(min_soak=86400), live(), facts(source=source)).allowed
    fresh = staging(in_desired=True, holds=False)
    held, basis = soaked(4, fresh, NOW)
    assert held == 0 and basis == "assigned in staging only in this change"


def test_status_must_be_ready() -> None:
    """A version still registering (not READY) is refused."""
    verdict = check(production(), live(status="PENDING_REGISTRATION"), facts())
    assert "status PENDING_REGISTRATION, required READY" in verdict.message


def test_rollback_by_history_skips_every_gate_and_says_so() -> None:
    """A version an earlier commit of this environment assigned, and that the controller
    applied there (ownership tag), returns without any gate."""
    own = (Assignment("c", NOW, 4), Assignment("b", NOW - HOUR, 5),
           Assignment("a", NOW - 9 * HOUR, 4))
    env = production(Gate(metric="accuracy", min=0.99), min_soak=86400)
    tagged = live(**{ownership_tag("production"): "a"})
    verdict = check(env, tagged, facts({"accuracy": 0.5}, source=staging(holds=False), own=own))
    assert verdict.allowed and verdict.gates == ()
    assert verdict.note == "rollback to v4, held by production before: gates skipped"


def test_history_without_the_tag_is_no_rollback() -> None:
    """An earlier commit that assigned the version is not enough: a merge refused by a gate
    and then reverted never served, so its version must pass the gates when it returns."""
    own = (Assignment("c", NOW, 4), Assignment("b", NOW - HOUR, 5),
           Assignment("a", NOW - 9 * HOUR, 4))
    env = production(Gate(metric="accuracy", min=0.99))
    verdict = check(env, live(), facts({"accuracy": 0.5}, own=own))
    assert not verdict.allowed and "accuracy 0.5 < min 0.99" in verdict.message


def test_tag_without_history_assignment_is_no_rollback() -> None:
    """A tag alone (written when the controller archived a hand-placed version) is not enough
    where git history is known and never assigned the version."""
    own = (Assignment("c", NOW, 4), Assignment("b", NOW - HOUR, 5))
    tagged = live(**{ownership_tag("production"): "b"})
    assert not held_before("production", 4, own, owned=True)
    verdict = check(production(Gate(metric="accuracy", min=0.9)), tagged,
                    facts({"accuracy": 0.5}, own=own))
    assert not verdict.allowed


def test_rollback_by_ownership_tag() -> None:
    """Without git history to consult, the environment's ownership tag is the evidence."""
    tagged = live(**{ownership_tag("production"): "abc"})
    verdict = check(production(Gate(metric="accuracy", min=0.99)), tagged, facts({}))
    assert verdict.allowed and "rollback" in verdict.note


def test_the_promotion_commit_itself_is_not_a_rollback() -> None:
    """The newest commits that assign the version (the promotion itself) do not exempt it."""
    own = (Assignment("pr", NOW, 4), Assignment("base", NOW - HOUR, 3))
    assert not held_before("production", 4, own, owned=False)
    verdict = check(production(Gate(metric="accuracy", min=0.9)), live(),
                    facts({"accuracy": 0.5}, own=own))
    assert not verdict.allowed


def test_copy_note_is_shown_for_cross_registry_versions() -> None:
    """A copy's verdict note names where it came from; a pending copy says apply makes it."""
    done = check(production(), live(), facts(copy_of="default/fraud-detector v4"))
    assert done.note == "copy of default/fraud-detector v4"
    pending = check(production(), live(), facts(copy_of="default/fraud-detector v4",
                                                pending_copy=True))
    assert "apply creates it as a new version" in pending.note


def test_every_failure_is_listed_in_one_message() -> None:
    """Several failed gates are all named in the one refusal line, in file order."""
    env = production(Gate(metric="accuracy", min=0.9), Gate(tag="validation_status",
                                                            equals="passed"))
    verdict = check(env, live(), facts({"accuracy": 0.5}, source=staging(holds=False)))
    assert verdict.message.count(";") == 2
    assert [g.passed for g in verdict.gates] == [True, False, False, False]


@given(value=st.floats(-1e6, 1e6, allow_nan=False),
       low=st.none() | st.floats(-1e6, 1e6, allow_nan=False),
       high=st.none() | st.floats(-1e6, 1e6, allow_nan=False))
def test_metric_gate_passes_exactly_inside_its_bounds(value: float, low: float | None,
                                                      high: float | None) -> None:
    """A metric gate passes iff min <= value <= max (each bound optional)."""
    if low is None and high is None:
        low = 0.0
    verdict = check(production(Gate(metric="m", min=low, max=high)), live(),
                    facts({"m": value}))
    inside = (low is None or value >= low) and (high is None or value <= high)
    assert verdict.allowed == inside


@given(st.lists(st.sampled_from([None, 3, 4, 5]), max_size=8), st.booleans())
def test_held_before_means_an_older_stretch_or_the_tag(versions: list[int | None],
                                                       owned: bool) -> None:
    """held_before is true iff owned and, where history is known, 4 appears after the
    leading run of 4s."""
    history = tuple(Assignment(str(i), NOW - i, v) for i, v in enumerate(versions))
    rest = versions
    while rest and rest[0] == 4:
        rest = rest[1:]
    expected = owned and (not history or 4 in rest)
    assert held_before("production", 4, history, owned) == expected


@given(st.integers(0, 10**7))
def test_duration_reads_back_as_the_same_seconds_to_the_minute(seconds: int) -> None:
    """duration() writes the units min_soak uses and loses at most the seconds."""
    from mlflow_gitops.desired.schema import parse_duration

    text = duration(seconds)
    back = parse_duration(text)
    assert back is not None and 0 <= seconds - back < 60
