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
)
from mlflow_gitops.core.plan import Verdict
from mlflow_gitops.core.tags import ownership_tag
from mlflow_gitops.desired.fields import parse_duration
from mlflow_gitops.policy.evidence import Stint
from mlflow_gitops.policy.rules import (
    FromFacts,
    PolicyFacts,
    RunFacts,
    duration,
    evaluate,
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


def staging(holds: bool = True, in_desired: bool = False, stint: Stint | None = None,
            live_since: float | None = None, upstream: Verdict | None = None) -> FromFacts:
    return FromFacts("staging", "environments/staging.yaml", "stage Staging", holds,
                     in_desired, stint, live_since, upstream=upstream)


def entered(env: str, ago: float, left_ago: float | None = None, commit: str = "1a2b3c4d" * 5
            ) -> Stint:
    """The controller's record: applied to `env` `ago` seconds before NOW (left later)."""
    return Stint(env, commit, NOW - ago, None if left_ago is None else NOW - left_ago)


def facts(metrics: dict[str, float] | None = None, source: FromFacts | None = None,
          served: Stint | None = None, run_id: str | None = RUN, **kw: object
          ) -> PolicyFacts:
    return PolicyFacts(now=NOW, version=4, run=RunFacts(run_id, metrics),
                       source=source if source is not None else staging(),
                       served=served, **kw)  # type: ignore[arg-type]


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


def test_never_in_from_is_refused_naming_the_missing_record() -> None:
    """A version not live in `from` and never applied there is refused, naming the record."""
    verdict = check(production(), live(), facts(source=staging(holds=False)))
    assert not verdict.allowed and verdict.waiting_until is None
    assert "never in staging: it does not hold stage Staging now and the controller never " \
           "applied it there (no gitops.applied.staging record)" in verdict.message


def test_from_passes_by_the_live_registry_or_an_applied_record() -> None:
    """Holding the from-target now, or the controller's record of applying it there (even if
    it has left since), satisfies from; the gate shows the record."""
    assert check(production(), live(), facts(source=staging(holds=True))).allowed
    record = entered("staging", 26 * HOUR, left_ago=HOUR)
    verdict = check(production(), live(), facts(source=staging(holds=False, stint=record)))
    assert verdict.allowed
    assert verdict.gates[1].actual.startswith("entered staging 2023-11-13 ")
    assert "applied by commit 1a2b3c4, 1d2h ago; left 2023-11-14" in verdict.gates[1].actual


def test_an_assignment_in_the_same_change_is_no_evidence() -> None:
    """Listing the version in `from` in the same change satisfies nothing by itself: refused
    when `from` refuses it, waiting (until now: the next pass) while `from` takes it first."""
    alone = check(production(), live(), facts(source=staging(holds=False, in_desired=True)))
    assert not alone.allowed and alone.waiting_until is None
    assert "which is no evidence until applied" in alone.message
    refused = Verdict(False, message="fraud-detector v4 not promoted: accuracy 0.5 < min 0.9")
    verdict = check(production(), live(), facts(source=staging(False, True, upstream=refused)))
    assert not verdict.allowed and verdict.waiting_until is None
    assert "but staging refuses it (fraud-detector v4 not promoted: accuracy 0.5" \
        in verdict.message
    taken = check(production(min_soak=3600), live(),
                  facts(source=staging(False, True, upstream=Verdict(True))))
    assert not taken.allowed and taken.waiting_until == NOW + 3600
    assert "staging applies it first and this promotion follows" in taken.message


def test_soak_by_the_recorded_entry_waits_until_it_has_passed() -> None:
    """Three hours since the controller applied it to staging against a 24h min_soak is a
    wait until entry + 24h, with the record in the reason; 25h passes."""
    record = entered("staging", 3 * HOUR)
    verdict = check(production(min_soak=86400), live(), facts(source=staging(stint=record)))
    assert not verdict.allowed
    assert verdict.waiting_until == record.entered + 86400
    assert "3h in staging (entered staging 2023-11-14 " in verdict.message
    assert "applied by commit 1a2b3c4, 3h ago) < min_soak 1d" in verdict.message
    old = staging(stint=entered("staging", 25 * HOUR))
    assert check(production(min_soak=86400), live(), facts(source=old)).allowed


def test_a_stay_that_ended_counts_its_length_and_waits_for_nothing() -> None:
    """A version moved out of staging soaked from its recorded entry to its recorded exit;
    time will not add to it, so a short stay is refused, not waiting."""
    short = staging(holds=False, stint=entered("staging", 30 * HOUR, left_ago=28 * HOUR))
    assert soaked(short, NOW).held == 2 * HOUR
    verdict = check(production(min_soak=86400), live(), facts(source=short))
    assert not verdict.allowed and verdict.waiting_until is None
    long = staging(holds=False, stint=entered("staging", 60 * HOUR, left_ago=30 * HOUR))
    assert check(production(min_soak=86400), live(), facts(source=long)).allowed


def test_an_unrecorded_exit_cannot_be_measured() -> None:
    """A version the controller applied to staging that has left without a recorded exit
    (moved by hand) has no measurable stay: refused, never counted up to now."""
    gone = staging(holds=False, stint=entered("staging", 90 * HOUR))
    verdict = check(production(min_soak=86400), live(), facts(source=gone))
    assert not verdict.allowed and verdict.waiting_until is None
    assert "left staging at a time the controller did not record" in verdict.message


def test_soak_without_a_record_uses_the_registry_clock_or_refuses() -> None:
    """Migration: a stage version with no record soaks from its live stage's last update
    (registry clock); an alias version with no record cannot be measured."""
    source = staging(live_since=NOW - 25 * HOUR)
    assert check(production(min_soak=86400), live(), facts(source=source)).allowed
    fresh = check(production(min_soak=86400), live(),
                  facts(source=staging(live_since=NOW - HOUR)))
    assert fresh.waiting_until == NOW - HOUR + 86400
    alias = FromFacts("staging", "environments/staging.yaml", "alias @candidate", True, False)
    verdict = check(production(min_soak=86400), live(), facts(source=alias))
    assert not verdict.allowed and verdict.waiting_until is None
    assert "no record of when it entered staging (gitops.applied.staging)" in verdict.message


def test_status_must_be_ready() -> None:
    """A version still registering (not READY) is refused."""
    verdict = check(production(), live(status="PENDING_REGISTRATION"), facts())
    assert "status PENDING_REGISTRATION, required READY" in verdict.message


def test_rollback_by_the_served_record_skips_every_gate_and_says_so() -> None:
    """A version the controller recorded promoting into this environment returns without
    any gate, and the note names the record."""
    env = production(Gate(metric="accuracy", min=0.99), min_soak=86400)
    verdict = check(env, live(), facts({"accuracy": 0.5}, source=staging(holds=False),
                                       served=entered("production", 9 * HOUR, left_ago=HOUR)))
    assert verdict.allowed and verdict.gates == ()
    assert verdict.note.startswith("rollback to v4, served in production before (applied by "
                                   "commit 1a2b3c4 at 2023-11-14 ")
    assert verdict.note.endswith("): gates skipped")


def test_the_lineage_tag_alone_is_no_rollback() -> None:
    """The ownership tag gitops.env.production (also written when the controller archives a
    version put there by hand) grants nothing: without a served record the gates apply."""
    tagged = live(**{ownership_tag("production"): "b" * 40})
    verdict = check(production(Gate(metric="accuracy", min=0.9)), tagged,
                    facts({"accuracy": 0.5}))
    assert not verdict.allowed and "accuracy 0.5 < min 0.9" in verdict.message


def test_a_soak_wait_with_a_failing_metric_is_a_refusal() -> None:
    """Waiting needs every failure to be one time will fix: a failing metric makes it a
    refusal even while the soak is still running."""
    env = production(Gate(metric="accuracy", min=0.9), min_soak=86400)
    verdict = check(env, live(), facts({"accuracy": 0.5},
                                       source=staging(stint=entered("staging", HOUR))))
    assert not verdict.allowed and verdict.waiting_until is None


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


@given(entered_ago=st.floats(0, 100 * HOUR), min_soak=st.integers(1, 72 * 3600))
def test_a_running_soak_passes_exactly_at_entry_plus_min_soak(entered_ago: float,
                                                              min_soak: int) -> None:
    """While the version holds `from`, the verdict is allowed iff now - entry >= min_soak,
    and otherwise waits until exactly entry + min_soak."""
    record = entered("staging", entered_ago)
    verdict = check(production(min_soak=min_soak), live(), facts(source=staging(stint=record)))
    assert verdict.allowed == (entered_ago >= min_soak)
    if not verdict.allowed:
        assert verdict.waiting_until == record.entered + min_soak


@given(st.integers(0, 10**7))
def test_duration_reads_back_as_the_same_seconds_to_the_minute(seconds: int) -> None:
    """duration() writes the units min_soak uses and loses at most the seconds."""
    text = duration(seconds)
    back = parse_duration(text)
    assert back is not None and 0 <= seconds - back < 60
