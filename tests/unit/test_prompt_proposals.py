"""Proposals for prompts: a prompt is proposed under `prompts:`, never under `models:`."""

from __future__ import annotations

from dataclasses import replace

from mlflow_gitops.core.model import PROMPT_TAG, DesiredState, LiveVersion, Propose, frozen_map
from mlflow_gitops.core.ports import GateCheck
from mlflow_gitops.desired.edits import promotion_edit
from mlflow_gitops.desired.loader import load_texts
from mlflow_gitops.planning.proposals import decide

from tests.support.builders import desired, env, live
from tests.support.envfiles import HEADER

PASSED = {"validation_status": "passed"}
CHAMPION = HEADER + """target:
  alias: champion
propose:
  when:
    tags: {validation_status: passed}
models:
  fraud: 1
prompts:
  summarizer: 1   # the proposal edits this line
"""


def _allow(state: DesiredState) -> GateCheck | None:
    return None


def _no_metrics(version: LiveVersion) -> None:
    return None


def test_a_prompt_not_listed_yet_is_proposed_not_refused_as_a_mix_up() -> None:
    """A tagged version of a prompt the file does not list yet is a candidate: the
    environment is planned with it as a prompt, so no 'is a prompt, not a model' error."""
    state = desired(replace(env("champion", "alias:champion", {}),
                            propose=Propose(tags=frozen_map(PASSED))))
    snapshot = live({"summarizer": {1: "None", 2: "None"}},
                    tags={("summarizer", 2): PASSED},
                    model_tags={"summarizer": {PROMPT_TAG: "true"}})
    decision = decide(state, "champion", "summarizer", snapshot, _allow, _no_metrics)
    assert (decision.current, decision.candidate, decision.skipped) == (None, 2, ())


def test_the_edit_of_a_listed_prompt_changes_its_line_under_prompts() -> None:
    """promotion_edit of a prompt listed under `prompts:` edits that line (comment kept) and
    adds nothing under `models:`; a prompt not listed yet is added under `prompts:`."""
    files = {"environments/champion.yaml": CHAMPION}
    state, problems = load_texts(files)
    assert state is not None, problems
    champion = state.by_name()["champion"]
    edit = promotion_edit(state, files, champion, "summarizer", 2)
    assert edit.changed["environments/champion.yaml"] == CHAMPION.replace(
        "summarizer: 1   #", "summarizer: 2   #")
    added = promotion_edit(state, files, champion, "greeter", 3, kind="prompt")
    after, problems = load_texts({"environments/champion.yaml":
                                  added.changed["environments/champion.yaml"]})
    assert after is not None, problems
    entries = after.by_name()["champion"].models
    assert (entries["greeter"].version, entries["greeter"].kind) == (3, "prompt")
    assert entries["fraud"].kind == "model"
