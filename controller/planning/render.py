"""Plan → text for people, markdown for a pull-request comment, JSON for machines.
Rendering never plans and never prints: one plan, several views (as Terraform does)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mlflow_gitops.core.plan import Change, GateResult, ModelError, Plan
from mlflow_gitops.core.states import State, state_of
from mlflow_gitops.planning.templates import old_label as template_from
from mlflow_gitops.planning.templates import template_diff
from mlflow_gitops.policy.evidence import when

#: (registry, model, version) → metrics of the version's source run.
Metrics = Mapping[tuple[str, str, int], Mapping[str, float]]

#: A gate's result in a PR comment: a check time alone passes is no failure.
_GATE_CELL = {"pass": "✅ pass", "wait": "⏳ wait", "FAIL": "❌ fail"}
_SYMBOL = {"promote": "+", "set_alias": "~", "archive": "-", "unstage": "-",
           "delete_alias": "-"}


def summary(plan: Plan) -> str:
    """Terraform's summary line; models with errors are counted after it, never hidden
    behind a bare "No changes.", and so are the ones waiting (on time alone) or held, which
    are no errors."""
    failed = len({(e.registry, e.environment, e.model) for e in plan.failures})
    tail = f" {failed} model{'s' if failed != 1 else ''} not changed: see the errors." \
        if failed else ""
    first = _first_until(plan)
    for state, word in (("Waiting", "waiting"), ("Held", "held")):
        count = len({(e.registry, e.environment, e.model) for e in plan.kept_back
                     if state_of(e) == state})
        if count:
            until = f" (until {when(first)})" if state == "Waiting" and first else ""
            tail += f" {count} {word}{until}."
    if not plan.changes:
        return ("No changes." if not plan.errors else "No changes to apply.") + tail
    return _counts(plan) + tail


def _first_until(plan: Plan) -> float | None:
    return min((e.until for e in plan.kept_back if e.until is not None), default=None)


def short_commit(commit: str) -> str:
    """A commit as people read it: 12 characters, keeping the `-dirty` marker of a folder
    with uncommitted edits (the plan is not of that commit alone)."""
    return commit[:12] + ("-dirty" if commit.endswith("-dirty") else "")


def _counts(plan: Plan) -> str:
    n = plan.counts()
    parts = [f"{n['promote']} to promote", f"{n['archive']} to archive"]
    if n["unstage"]:
        parts.append(f"{n['unstage']} to unstage")
    parts.append(f"{n['set_alias']} alias{'es' if n['set_alias'] != 1 else ''} to move")
    if n["delete_alias"]:
        parts.append(f"{n['delete_alias']} alias{'es' if n['delete_alias'] != 1 else ''} "
                     "to delete")
    return "Plan: " + ", ".join(parts) + "."


def replaced_versions(plan: Plan, change: Change) -> tuple[int, ...]:
    """What a promotion takes the place of: the alias's old version or the stage's leavers."""
    if change.action == "set_alias":
        return (change.previous_version,) if change.previous_version else ()
    return tuple(c.version for c in plan.changes
                 if c.environment == change.environment and c.model == change.model
                 and c.reason == "replaced")


def metric_rows(plan: Plan, change: Change, metrics: Metrics | None
                ) -> list[tuple[str, float | None, float | None]]:
    if not metrics or change.action not in ("promote", "set_alias"):
        return []
    new = metrics.get((change.registry, change.model, change.version), {})
    olds = replaced_versions(plan, change)
    old = metrics.get((change.registry, change.model, olds[0]), {}) if olds else {}
    return [(k, old.get(k), new.get(k)) for k in sorted(set(old) | set(new))]


def _fmt(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.6g}"


def _delta(old: float | None, new: float | None) -> str:
    if old is None or new is None:
        return "—"
    return f"{new - old:+.6g}"


def gate_mark(g: GateResult) -> str:
    """pass, wait (a check time alone passes, with when) or FAIL."""
    if g.passed:
        return "pass"
    return "wait" if g.until is not None else "FAIL"


def _gate_line(g: GateResult) -> str:
    mark = gate_mark(g)
    until = f" — until {when(g.until)}" if mark == "wait" and g.until is not None else ""
    return f"{mark}  {g.name}: {g.actual} (required {g.required})" + (
        f" — {g.detail}" if g.detail else "") + until


def kept_back_line(e: ModelError) -> str:
    """A Waiting or Held entry in words that say it is no error, with when it proceeds."""
    if state_of(e) == "Waiting":
        until = f" — until {when(e.until)}" if e.until is not None else ""
        return f"waiting {e}{until}"
    return f"held {e}"


def render_errors(plan: Plan) -> str:
    """The per-model failures (Refused, Error) with their gates, one block (the CLI prints
    it on stderr). Waiting and Held are not among them: `render_kept_back` shows those."""
    return _block(plan.failures, lambda e: f"error {e}")


def render_kept_back(plan: Plan) -> str:
    """The Waiting and Held entries with their gates, one block (stdout: they are no error)."""
    return _block(plan.kept_back, kept_back_line)


def _block(errors: tuple[ModelError, ...], head: Any) -> str:
    lines: list[str] = []
    for e in errors:
        lines.append(f"  {head(e)}")
        for g in e.gates:
            lines.append(f"      gate {_gate_line(g)}")
    return "\n".join(lines) + ("\n" if lines else "")


def render_text(plan: Plan, metrics: Metrics | None = None, errors: bool = True) -> str:
    """Changes, drift, then (unless `errors=False`, when the caller shows them apart) the
    errors, and the summary line last."""
    lines: list[str] = []
    width = max((len(c.environment) for c in plan.changes), default=0)
    for change in plan.changes:
        registry = f"{change.registry}/" if change.registry != "default" else ""
        tag = "" if change.reason == "git" else f"   ({change.reason})"
        lines.append(f"  {_SYMBOL[change.action]} {registry}{change.environment:<{width}}  "
                     f"{change.describe()}{tag}")
        if change.note:
            lines.append(f"      note: {change.note}")
        for g in change.gates:
            lines.append(f"      gate {_gate_line(g)}")
        for name, old, new in metric_rows(plan, change, metrics):
            lines.append(f"      {name}: {_fmt(old)} → {_fmt(new)} ({_delta(old, new)})")
        if diff := template_diff(change):
            lines.append(f"      template {template_from(change)} → v{change.version}:")
            lines += [f"        {line}" for line in diff]
    if plan.drift:
        lines.append("")
        lines.append("Drift, reported only (sync.self_heal: false):")
        for d in plan.drift:
            lines.append(f"  {d.file}:{d.line}: {d.environment}/{d.model}: git wants "
                         f"{d.desired}, live has {d.live}")
    for warning in plan.warnings:
        lines.append("")
        lines.append(f"warning: {warning}")
    if plan.kept_back:
        lines.append("")
        lines.append("Waiting or held (no error: applied by a later pass on its own, or after "
                     "release):")
        lines.append(render_kept_back(plan).rstrip("\n"))
    if plan.failures and errors:
        lines.append("")
        lines.append("Errors (these models are not changed):")
        lines.append(render_errors(plan).rstrip("\n"))
    if lines:
        lines.append("")
    lines.append(summary(plan))
    return "\n".join(lines) + "\n"


def render_markdown(plan: Plan, metrics: Metrics | None = None,
                    title: str = "mlflow-gitops plan") -> str:
    out = [f"### {title}", "", f"Commit `{short_commit(plan.commit)}` · **{summary(plan)}**", ""]
    if plan.changes:
        out += ["| | environment | change | reason |", "|---|---|---|---|"]
        for c in plan.changes:
            out.append(f"| {_SYMBOL[c.action]} | `{c.environment}` | {c.describe()} | "
                       f"{c.reason} |")
        out.append("")
    for c in plan.changes:
        rows = metric_rows(plan, c, metrics)
        diff = template_diff(c)
        if not (c.gates or rows or c.note or diff):
            continue
        out += [f"#### {c.environment}: {c.describe()}", ""]
        if c.note:
            out += [f"> {c.note}", ""]
        if c.gates:
            out += _gate_table(c.gates)
        if rows:
            olds = replaced_versions(plan, c)
            old_label = f"v{olds[0]}" if olds else "(none)"
            out += [f"| metric | {old_label} | v{c.version} | delta |", "|---|---:|---:|---:|"]
            out += [f"| {n} | {_fmt(o)} | {_fmt(v)} | {_delta(o, v)} |" for n, o, v in rows]
            out.append("")
        if diff:
            out += [f"Template {template_from(c)} → v{c.version}:", "", "```diff", *diff, "```", ""]
    if plan.errors:
        out += ["#### Not applied", ""]
        for e in sorted(plan.errors, key=lambda e: not e.is_failure):
            state = state_of(e)
            until = f" (until {when(e.until)})" if state == State.Waiting and e.until else ""
            out.append(f"- {state.traits.pr_icon} **{state}**{until} "
                       f"`{e.file}:{e.line}` {e.message}")
        out.append("")
        for e in plan.errors:
            if e.gates:
                out += [f"Gates for `{e.environment}/{e.model}`:", ""] + _gate_table(e.gates)
    if plan.warnings:
        out += ["#### Warnings", ""]
        out += [f"- ⚠️ {w}" for w in plan.warnings]
        out.append("")
    if plan.drift:
        out += ["#### Drift (reported only, `self_heal: false`)", ""]
        for d in plan.drift:
            out.append(f"- `{d.environment}/{d.model}`: git wants {d.desired}, live has {d.live}")
        out.append("")
    return "\n".join(out) + "\n"


def _gate_table(gates: tuple[GateResult, ...]) -> list[str]:
    rows = ["| gate | result | actual | required |", "|---|---|---|---|"]
    rows += [f"| {g.name} | {_GATE_CELL[gate_mark(g)]}"
             + (f" until {when(g.until)}" if gate_mark(g) == "wait" and g.until else "")
             + f" | {g.actual} | {g.required} |" for g in gates]
    return rows + [""]


def render_json(plan: Plan, metrics: Metrics | None = None) -> str:
    data: dict[str, Any] = plan.to_dict()
    data["summary_text"] = summary(plan)
    if metrics:
        for change_data, change in zip(data["changes"], plan.changes, strict=True):
            change_data["metrics"] = [{"metric": n, "old": o, "new": v}
                                      for n, o, v in metric_rows(plan, change, metrics)]
    return json.dumps(data, indent=2, sort_keys=True)
