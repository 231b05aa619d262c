"""The State enum: one definition carrying what each state means to every consumer."""

from __future__ import annotations

import json
import logging

from mlflow_gitops.core.states import RESULTS, STATES, State, least_happy_first, worst
from mlflow_gitops.planning.overview import NEUTRAL, state_style


def test_a_state_is_its_word_in_json_labels_and_dict_keys() -> None:
    """A State equals, hashes, formats and serialises as its word, so str-keyed code works."""
    for state in STATES:
        word = str(state)
        assert state == word and f"{state}" == word and json.dumps(state) == f'"{word}"'
        assert {word: 1}[state] == 1 and {state: 1}[word] == 1


def test_severity_is_the_declaration_order_and_worst_follows_it() -> None:
    """Members are listed best first; worst() and the page's order both follow that one order."""
    assert [s.severity for s in STATES] == sorted(s.severity for s in STATES)
    assert worst([State.OutOfSync, State.Waiting]) == State.Waiting
    assert worst(["Held", "Refused"]) == State.Refused and worst([]) == State.Synced
    assert least_happy_first(["Synced", "OutOfSync", "Error", "Waiting"]) == \
        ["Error", "Waiting", "OutOfSync", "Synced"]


def test_every_state_says_what_it_means_to_each_consumer() -> None:
    """Each state's traits: a result label among RESULTS, a log level, a forge state, a style;
    only problems raise an Event, warn or fail the commit status."""
    for state in STATES:
        t = state.traits
        assert t.result in RESULTS and t.forge in ("pending", "success", "failure")
        assert state_style(state) == (t.css, t.symbol) != NEUTRAL
        assert (t.level >= logging.WARNING) == (t.forge == "failure")
    assert State.Synced.traits.event is None and State.Error.traits.event == \
        ("ReconcileFailed", True)
    assert State.parse("Exploded") is None and state_style("Exploded") == NEUTRAL
