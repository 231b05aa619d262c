"""The promotion policy as pure functions over evidence fetched
beforehand.

A version may enter an environment only if it came through `from` (it holds the `from`
environment's target in the live registry now, or the controller recorded applying it
there), stayed there for `min_soak` by the controller's recorded clock, is READY and passes
every metric and tag gate. A version the controller recorded serving in this environment
before (an applied, accepted promotion) is a rollback and is never blocked. Commit dates and
git history are no evidence: a pull request author controls them. No I/O here:
mlflow_gitops.policy.facts gathers the facts (records, live state, run metrics) and calls
`evaluate`, so every rule is testable with plain values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from mlflow_gitops.core.model import Environment, Gate, LiveModel, frozen_map
from mlflow_gitops.core.plan import GateResult, Verdict
from mlflow_gitops.core.tags import applied_tag
from mlflow_gitops.policy import windows
from mlflow_gitops.policy.evidence import Stint, describe, when
from mlflow_gitops.policy.units import duration

__all__ = ["READY", "FromFacts", "PolicyFacts", "RunFacts", "Soak", "duration", "evaluate",
           "short_run", "soaked"]

READY = "READY"


@dataclass(frozen=True)
class RunFacts:
    """The candidate's source run, as far as it could be read."""

    run_id: str | None = None
    metrics: Mapping[str, float] | None = None  # None: not read (no run, or see `error`)
    error: str = ""


@dataclass(frozen=True)
class FromFacts:
    """The `from` environment's evidence about the candidate version."""

    env: str
    file: str
    target: str  # e.g. "stage Staging", "alias @candidate"
    holds_now: bool  # holds the from-environment's target in the live registry now
    in_desired: bool  # the same desired state assigns it there (no evidence by itself)
    stint: Stint | None = None  # the controller's record of applying it there
    live_since: float | None = None  # registry clock: its live stage's last update
    error: str = ""  # the from-environment's registry could not be read
    #: in_desired but not there yet: the from-environment's own verdict on it this pass
    upstream: Verdict | None = None
    verified_at: float | None = None  # the controller verified it there (its own clock)
    verifying_until: float | None = None  # its verification there is still running


@dataclass(frozen=True)
class PolicyFacts:
    """Everything `evaluate` needs beyond the environment and the live model."""

    now: float  # epoch seconds, the evaluating process's clock
    version: int  # the number the environment file uses (the origin registry's, across registries)
    run: RunFacts = RunFacts()
    source: FromFacts | None = None
    served: Stint | None = None  # the controller's record of promoting it into this environment
    origin_tags: Mapping[str, str] = field(default_factory=frozen_map)  # tags of the copied version
    copy_of: str = ""  # "default/fraud-detector v4" when the candidate is a cross-registry copy
    pending_copy: bool = False  # the copy is made by apply; the live version is a placeholder
    label: str = ""  # the model's name as the file writes it, if different from the registry's


@dataclass(frozen=True)
class Soak:
    """How long the candidate stayed in the `from` environment, by clocks no commit sets."""

    held: float  # seconds
    basis: str  # the evidence, for people
    since: float | None = None  # still there: when the stretch began (soak grows with time)


#: One check: its result, the reason it failed, and when time alone will pass it (or None).
_Check = tuple[GateResult, str, "float | None"]


def evaluate(env: Environment, model: str, version: int, live_model: LiveModel,
             facts: PolicyFacts) -> Verdict:
    """May `version` of `model` (a version of `live_model`) enter `env`? Every gate's result.
    Refused only by checks that time alone passes (soak): `waiting_until` says when."""
    promotion = env.promotion
    if promotion is None:
        return Verdict(True, note=_copy_note(facts))
    live = live_model.versions.get(version)
    tags = {**facts.origin_tags, **(live.tags if live is not None else {})}
    name = f"{facts.label or model} v{facts.version}"
    if facts.served is not None:
        note = f"rollback to v{facts.version}, served in {env.name} before (applied by commit " \
               f"{facts.served.commit[:7]} at {when(facts.served.entered)}): gates skipped"
        return Verdict(True, note="; ".join(n for n in (note, _copy_note(facts)) if n))
    results: list[_Check] = [_status(live.status if live else "MISSING")]
    if facts.source is not None:
        results.append(_from(facts.source, facts.now))
        if promotion.min_soak_seconds:
            results.append(_soak(facts.source, promotion.min_soak_seconds, facts.now))
        if promotion.require_verified:
            results.append(_verified(facts.source))
    for gate in promotion.gates:
        results.append(_metric(gate, facts.run) if gate.metric else _tag(gate, tags))
    if promotion.windows:
        results.append(_window(env.name, windows.check(promotion.windows, facts.now)))
    gates = tuple(replace(r, until=until) if not r.passed and until is not None else r
                  for r, _, until in results)
    failed = [(why, until) for r, why, until in results if not r.passed]
    if failed:
        untils = [until for _, until in failed]
        waiting = max(u for u in untils if u is not None) \
            if all(u is not None for u in untils) else None
        return Verdict(False, gates, message=f"{name} not promoted: "
                       + "; ".join(why for why, _ in failed), waiting_until=waiting)
    return Verdict(True, gates, note=_copy_note(facts))


def soaked(source: FromFacts, now: float) -> Soak:
    """The candidate's latest stretch in `source`: from the controller's record of applying
    it there to its recorded exit, or to now while it is still there. Without a record (a
    version placed before records were written, or by hand), a stage target counts from the
    version's last update by the registry's clock, a lower bound; an alias has no such time."""
    stint = source.stint
    if stint is not None:
        if stint.ended is not None:
            return Soak(stint.ended - stint.entered, describe(stint, now))
        if source.holds_now:
            return Soak(max(now - stint.entered, 0.0), describe(stint, now), stint.entered)
        return Soak(0.0, f"{describe(stint, now)}; it left {source.env} at a time the "
                    "controller did not record, so its stay cannot be measured")
    if source.holds_now and source.live_since is not None:
        return Soak(max(now - source.live_since, 0.0),
                    f"in {source.target} since {when(source.live_since)} by the registry's "
                    f"clock (no record of the controller applying it to {source.env})",
                    source.live_since)
    if source.holds_now:
        return Soak(0.0, f"holds {source.target}, but there is no record of when it entered "
                    f"{source.env} ({applied_tag(source.env)}); have the controller apply it "
                    f"to {source.env} again to start the soak")
    if source.in_desired:
        return Soak(0.0, f"not applied to {source.env} yet (assigned there in this change)")
    return Soak(0.0, f"never applied to {source.env}")


def short_run(run_id: str) -> str:
    return f"{run_id[:8]}…" if len(run_id) > 8 else run_id


# -- one check each: (result, the failure's reason in the refusal message) ------------------

def _status(status: str) -> _Check:
    ok = status == READY
    return GateResult("status", ok, status, READY), f"status {status}, required {READY}", None


def _from(source: FromFacts, now: float) -> _Check:
    name, required = f"from {source.env}", f"in {source.env} ({source.target})"
    if source.holds_now:
        return GateResult(name, True, f"holds {source.target} now", required), "", None
    if source.stint is not None:
        return GateResult(name, True, describe(source.stint, now), required), "", None
    upstream = source.upstream
    if source.in_desired and upstream is not None and (
            upstream.allowed or upstream.waiting_until is not None):
        until = now if upstream.allowed else upstream.waiting_until
        why = f"not in {source.env} yet: assigned there in this change, {source.env} applies " \
              "it first and this promotion follows"
        return GateResult(name, False, f"not in {source.env} yet", required), why, until
    if source.in_desired and upstream is not None:
        why = f"not in {source.env}: assigned there in this change, but {source.env} " \
              f"refuses it ({upstream.message})"
        return GateResult(name, False, f"refused by {source.env}", required), why, None
    why = f"never in {source.env}: it does not hold {source.target} now and the controller " \
          f"never applied it there (no {applied_tag(source.env)} record)"
    if source.in_desired:
        why += f"; assigned in {source.file} in this change, which is no evidence until applied"
    detail = source.error
    return GateResult(name, False, "never there", required, detail), why, None


def _soak(source: FromFacts, min_soak: int, now: float) -> _Check:
    soak = soaked(source, now)
    ok = soak.held >= min_soak
    result = GateResult(f"min_soak {duration(min_soak)}", ok,
                        f"{duration(soak.held)} in {source.env} ({soak.basis})",
                        f">= {duration(min_soak)}")
    why = f"{duration(soak.held)} in {source.env} ({soak.basis}) < min_soak {duration(min_soak)}"
    if soak.since is not None:
        until: float | None = soak.since + min_soak
    elif source.upstream is not None and not source.holds_now and source.stint is None and (
            source.upstream.allowed or source.upstream.waiting_until is not None):
        until = max(now, source.upstream.waiting_until or now) + min_soak  # once applied there
    else:
        until = None
    return result, why, until


def _verified(source: FromFacts) -> _Check:
    """`require_verified`: the controller's own record that the version passed its live
    checks in `from` (a verification still running there waits for its end)."""
    name, required = f"verified in {source.env}", "verify: passed"
    if source.verified_at is not None:
        return GateResult(name, True, f"verified {when(source.verified_at)}", required), "", \
            None
    if source.verifying_until is not None:
        why = f"still verifying in {source.env} until {when(source.verifying_until)}"
        return GateResult(name, False, "verifying", required), why, source.verifying_until
    why = f"not verified in {source.env} (no passed verification recorded there)"
    return GateResult(name, False, "not verified", required), why, None


def _window(env: str, window: windows.WindowCheck) -> _Check:
    """Freeze/release windows: closed waits until the opening (None: no opening ahead, so a
    new commit is needed and the promotion is refused rather than waiting)."""
    if window.open:
        return GateResult("window", True, "open", "outside deny, inside allow windows"), "", None
    zone = window.blocking[0].timezone if window.blocking else "UTC"
    if window.problem:
        opens = "once the window can be evaluated (fix the file)"
    elif window.opens_at is not None:
        opens = windows.when(window.opens_at, zone)
    else:
        opens = "at no time found ahead (the windows leave no gap within a year)"
    actual = window.reason()
    result = GateResult("window", False, actual, "outside deny, inside allow windows",
                        f"opens {opens}")
    return (result, f"promotions into {env} are frozen ({actual}); the window opens {opens}",
            window.opens_at)


def _metric(gate: Gate, run: RunFacts) -> _Check:
    result, why = _metric_result(gate, run)
    return result, why, None


def _metric_result(gate: Gate, run: RunFacts) -> tuple[GateResult, str]:
    metric = gate.metric or ""
    required = " and ".join(p for p in (
        f">= {gate.min:g}" if gate.min is not None else "",
        f"<= {gate.max:g}" if gate.max is not None else "") if p)
    name = f"metric {metric}"
    bound = ", ".join(p for p in (f"min {gate.min:g}" if gate.min is not None else "",
                                  f"max {gate.max:g}" if gate.max is not None else "") if p)
    if not run.run_id:
        return (GateResult(name, False, "no source run", required),
                f"{metric}: the version has no source run (gate {bound})")
    where = f"run {short_run(run.run_id)}"
    if run.metrics is None:
        return (GateResult(name, False, "run unreadable", required, run.error),
                f"{metric}: {where} could not be read ({run.error or 'unknown error'})")
    value = run.metrics.get(metric)
    if value is None:
        return (GateResult(name, False, "missing", required, where),
                f"{where} has no metric '{metric}' (gate {bound})")
    if gate.min is not None and value < gate.min:
        return (GateResult(name, False, f"{value:g}", required, where),
                f"{metric} {value:g} < min {gate.min:g} ({where})")
    if gate.max is not None and value > gate.max:
        return (GateResult(name, False, f"{value:g}", required, where),
                f"{metric} {value:g} > max {gate.max:g} ({where})")
    return GateResult(name, True, f"{value:g}", required, where), ""


def _tag(gate: Gate, tags: Mapping[str, str]) -> _Check:
    key = gate.tag or ""
    value = tags.get(key)
    name = f"tag {key}"
    if gate.equals is not None:
        required = f"= {gate.equals!r}"
        ok = value == gate.equals
        actual = repr(value) if value is not None else "missing"
        why = f"tag {key} is {actual}, required {gate.equals!r}"
    else:
        want = gate.exists is not False
        required = "present" if want else "absent"
        ok = (value is not None) == want
        actual = "present" if value is not None else "missing"
        why = f"tag {key} is {actual}, required {required}"
    return GateResult(name, ok, actual, required), why, None


def _copy_note(facts: PolicyFacts) -> str:
    if not facts.copy_of:
        return ""
    if facts.pending_copy:
        return f"copy of {facts.copy_of}: apply creates it as a new version (number " \
               "assigned by the registry)"
    return f"copy of {facts.copy_of}"
