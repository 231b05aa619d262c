"""The promotion policy (SPEC §3 `promotion`) as pure functions over facts fetched beforehand.

A version may enter an environment only if it came through `from` (live there now, assigned
there in the same desired state, or assigned there at an earlier commit), stayed there for
`min_soak`, is READY and passes every metric and tag gate. A version the environment held
before (git history or the ownership tag) is a rollback and is never blocked. No I/O here:
mlflow_gitops.policy.facts gathers the facts (git history, run metrics) and calls `evaluate`,
so every rule is testable with plain values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from mlflow_gitops.core.model import Environment, Gate, LiveModel, frozen_map, ownership_tag
from mlflow_gitops.core.plan import GateResult, Verdict

READY = "READY"


@dataclass(frozen=True)
class Assignment:
    """What one commit of an environment file assigned to one model."""

    sha: str
    committed_at: float  # commit time, epoch seconds
    version: int | None  # None: the model was not listed (or the file was unreadable)


@dataclass(frozen=True)
class RunFacts:
    """The candidate's source run, as far as it could be read."""

    run_id: str | None = None
    metrics: Mapping[str, float] | None = None  # None: not read (no run, or see `error`)
    error: str = ""


@dataclass(frozen=True)
class FromFacts:
    """The `from` environment's view of the candidate version."""

    env: str
    file: str
    target: str  # e.g. "stage Staging", "alias @candidate"
    holds_now: bool  # holds the from-environment's target in the live registry now
    in_desired: bool  # the same desired state assigns it there
    history: tuple[Assignment, ...] = ()  # the from-environment file's commits, newest first
    live_since: float | None = None  # epoch s of its live stage's last update (no-git fallback)
    history_error: str = ""


@dataclass(frozen=True)
class PolicyFacts:
    """Everything `evaluate` needs beyond the environment and the live model."""

    now: float  # epoch seconds
    version: int  # the number the environment file uses (the origin registry's, across registries)
    run: RunFacts = RunFacts()
    source: FromFacts | None = None
    own_history: tuple[Assignment, ...] = ()  # this environment file's commits, newest first
    origin_tags: Mapping[str, str] = field(default_factory=frozen_map)  # tags of the copied version
    copy_of: str = ""  # "default/fraud-detector v4" when the candidate is a cross-registry copy
    pending_copy: bool = False  # the copy is made by apply; the live version is a placeholder
    label: str = ""  # the model's name as the file writes it, if different from the registry's


def evaluate(env: Environment, model: str, version: int, live_model: LiveModel,
             facts: PolicyFacts) -> Verdict:
    """May `version` of `model` (a version of `live_model`) enter `env`? Every gate's result."""
    promotion = env.promotion
    if promotion is None:
        return Verdict(True, note=_copy_note(facts))
    live = live_model.versions.get(version)
    tags = {**facts.origin_tags, **(live.tags if live is not None else {})}
    name = f"{facts.label or model} v{facts.version}"
    if held_before(env.name, facts.version, facts.own_history,
                   owned=live is not None and ownership_tag(env.name) in live.tags):
        note = f"rollback to v{facts.version}, held by {env.name} before: gates skipped"
        return Verdict(True, note="; ".join(n for n in (note, _copy_note(facts)) if n))
    results: list[tuple[GateResult, str]] = [_status(live.status if live else "MISSING")]
    if facts.source is not None:
        results.append(_from(facts.version, facts.source))
        if promotion.min_soak_seconds:
            results.append(_soak(facts.version, facts.source, promotion.min_soak_seconds,
                                 facts.now))
    for gate in promotion.gates:
        results.append(_metric(gate, facts.run) if gate.metric else _tag(gate, tags))
    gates = tuple(r for r, _ in results)
    failures = [why for r, why in results if not r.passed]
    if failures:
        return Verdict(False, gates, message=f"{name} not promoted: " + "; ".join(failures))
    return Verdict(True, gates, note=_copy_note(facts))


def held_before(env: str, version: int, history: tuple[Assignment, ...], owned: bool) -> bool:
    """Did `env` hold `version` before? It must carry the environment's ownership tag (the
    controller applied it there) and, where git history is known, an earlier commit of the
    file must have assigned it. Either alone is not enough: a tag is also written when a
    version someone put there by hand is archived, and a commit may have been refused by a
    gate and reverted without the version ever serving. The newest commits that assign it
    now are the promotion itself (or its pull request), so they are skipped."""
    if not owned:
        return False
    if not history:
        return True  # no git history to consult (e.g. a folder outside git): the tag decides
    older = _after_leading(history, version)
    return any(a.version == version for a in older)


def soaked(version: int, source: FromFacts, now: float) -> tuple[float, str]:
    """How long `version` stayed in `source` in its longest continuous stretch, and the basis."""
    best, basis = 0.0, ""
    start: Assignment | None = None
    for assignment in reversed(source.history):  # oldest first
        if assignment.version == version and start is None:
            start = assignment
        elif assignment.version != version and start is not None:
            span = assignment.committed_at - start.committed_at
            if span >= best:
                best, basis = span, f"from commit {start.sha[:7]} to {assignment.sha[:7]}"
            start = None
    if start is not None and now - start.committed_at >= best:
        best, basis = now - start.committed_at, f"since commit {start.sha[:7]}"
    if basis:
        return max(best, 0.0), basis
    if source.holds_now and source.live_since is not None:
        return max(now - source.live_since, 0.0), "since its live stage last changed (no git " \
            "history of it)"
    if source.in_desired:
        return 0.0, f"assigned in {source.env} only in this change"
    return 0.0, f"no record of when it entered {source.env}"


def duration(seconds: float) -> str:
    """90061 → '1d1h1m': the same units `min_soak` is written in."""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def short_run(run_id: str) -> str:
    return f"{run_id[:8]}…" if len(run_id) > 8 else run_id


# -- one check each: (result, the failure's reason in the refusal message) ------------------

def _status(status: str) -> tuple[GateResult, str]:
    ok = status == READY
    return GateResult("status", ok, status, READY), f"status {status}, required {READY}"


def _from(version: int, source: FromFacts) -> tuple[GateResult, str]:
    name, required = f"from {source.env}", f"in {source.env} ({source.target})"
    past = next((a for a in source.history if a.version == version), None)
    if source.holds_now:
        actual = f"holds {source.target} now"
    elif source.in_desired:
        actual = f"assigned in {source.env} in this change"
    elif past is not None:
        actual = f"assigned in {source.env} at commit {past.sha[:7]}"
    else:
        why = f"never in {source.env}: not live there, not assigned in {source.file} now " \
              "or in its git history"
        detail = f"git history unreadable: {source.history_error}" if source.history_error \
            else ""
        return GateResult(name, False, "never there", required, detail), why
    return GateResult(name, True, actual, required), ""


def _soak(version: int, source: FromFacts, min_soak: int, now: float
          ) -> tuple[GateResult, str]:
    held, basis = soaked(version, source, now)
    ok = held >= min_soak
    result = GateResult(f"min_soak {duration(min_soak)}", ok,
                        f"{duration(held)} in {source.env}", f">= {duration(min_soak)}", basis)
    return result, f"{duration(held)} in {source.env} ({basis}) < min_soak {duration(min_soak)}"


def _metric(gate: Gate, run: RunFacts) -> tuple[GateResult, str]:
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


def _tag(gate: Gate, tags: Mapping[str, str]) -> tuple[GateResult, str]:
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
    return GateResult(name, ok, actual, required), why


def _copy_note(facts: PolicyFacts) -> str:
    if not facts.copy_of:
        return ""
    if facts.pending_copy:
        return f"copy of {facts.copy_of}: apply creates it as a new version (number " \
               "assigned by the registry)"
    return f"copy of {facts.copy_of}"


def _after_leading(history: tuple[Assignment, ...], version: int) -> tuple[Assignment, ...]:
    index = 0
    while index < len(history) and history[index].version == version:
        index += 1
    return history[index:]
