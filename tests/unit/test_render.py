"""Rendering a plan: Waiting reads as Waiting (never FAIL or an error), with its time; the
markdown names the commit as it is, `-dirty` included."""

from __future__ import annotations

from mlflow_gitops.core.plan import GateResult, ModelError, Plan
from mlflow_gitops.planning.render import render_errors, render_markdown, render_text, summary

UNTIL = 1_800_000_000.0  # 2027-01-15 08:00 UTC
SOAK = GateResult("min_soak 1h", False, "9s in staging", ">= 1h", until=UNTIL)
WAITING = ModelError("default", "production", "m", "waiting", "m v2 not promoted: 9s in "
                     "staging < min_soak 1h", "production.yaml", 10, gates=(SOAK,), until=UNTIL)
REFUSED = ModelError("default", "production", "n", "gate", "n v3 not promoted: accuracy 0.5 "
                     "< min 0.9", "production.yaml", 11,
                     gates=(GateResult("metric accuracy", False, "0.5", ">= 0.9"),))


def test_waiting_is_no_error_in_text_and_says_until_when() -> None:
    """A soak wait is listed under 'Waiting or held' with 'wait … until', not under Errors."""
    plan = Plan("c0ffee", errors=(WAITING,))
    text = render_text(plan, errors=True)
    assert "Errors" not in text and "FAIL" not in text and render_errors(plan) == ""
    assert "  waiting production.yaml:10: m v2 not promoted: 9s in staging < min_soak 1h " \
        "— until 2027-01-15 08:00 UTC" in text
    assert "gate wait  min_soak 1h: 9s in staging (required >= 1h) — until 2027-01-15 08:00 " \
        "UTC" in text
    assert summary(plan) == "No changes to apply. 1 waiting (until 2027-01-15 08:00 UTC)."


def test_a_refusal_is_still_an_error_beside_a_wait() -> None:
    """Refused stays an error (stderr block, FAIL) while the wait beside it does not."""
    plan = Plan("c0ffee", errors=(WAITING, REFUSED))
    assert render_errors(plan).startswith("  error production.yaml:11: n v3")
    assert "waiting" not in render_errors(plan)
    assert summary(plan).startswith("No changes to apply. 1 model not changed: see the errors.")


def test_markdown_marks_waiting_with_an_hourglass_and_keeps_dirty() -> None:
    """The PR comment shows ⏳ wait with the time, never ❌, and a dirty folder's commit
    keeps its -dirty marker."""
    commit = "0123456789abcdef0123456789abcdef01234567-dirty"
    markdown = render_markdown(Plan(commit, errors=(WAITING,)))
    assert "Commit `0123456789ab-dirty`" in markdown
    assert "| min_soak 1h | ⏳ wait until 2027-01-15 08:00 UTC | 9s in staging | >= 1h |" \
        in markdown
    assert "❌" not in markdown
    assert ":hourglass: **Waiting** (until 2027-01-15 08:00 UTC)" in markdown


def test_json_keeps_waiting_and_held_apart_from_errors() -> None:
    """`-o json` lists a soak still running under `waiting` (with its time) and a hold under
    `held`; `errors` holds only what a person or a retry must act on."""
    import json

    from mlflow_gitops.planning.render import render_json

    plan = Plan("abc", errors=(
        ModelError("default", "production", "m", "waiting", "soaking", "p.yaml", 3,
                   until=1900.0),
        ModelError("default", "staging", "h", "held", "held by ana", "s.yaml", 4),
        ModelError("default", "production", "r", "gate", "not promoted", "p.yaml", 5)))
    data = json.loads(render_json(plan))
    assert [e["model"] for e in data["errors"]] == ["r"]
    assert [(e["model"], e["until"]) for e in data["waiting"]] == [("m", 1900.0)]
    assert [e["model"] for e in data["held"]] == ["h"]
