"""The states an (environment, model) entry can be in after a pass, and everything each one
means to the parts that show it: how bad it is, the `mlflow_gitops_reconcile_total{result}`
label, the log level of the line that says an entry entered it, the Kubernetes Event, the
notification event, the forge commit-status state and the page's colour and symbol.

This is the one place a state is defined. To add a state, add a member below in its place of
severity (members are listed from best to worst) with its `Traits`; every consumer (status,
reporter, feedback, metrics, page, renderers) reads them from here.

`State` is a `str`: a member equals, hashes and prints as its word ("Synced"), so it goes
into JSON, metric labels and templates as the word."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from functools import cache

from mlflow_gitops.core.feedback import EventKind, StatusState
from mlflow_gitops.core.plan import ErrorKind, ModelError


@dataclass(frozen=True)
class Traits:
    """What a state means outside the status row."""

    result: str  # the pass's `reconcile_total{result}` when this is its worst state
    level: int  # logging level of the line "entry entered this state"
    css: str  # the page's class (colour); the word and the symbol carry the meaning
    symbol: str  # one that common fonts have: no emoji
    forge: StatusState  # the commit status of an environment whose worst state this is
    event: tuple[str, bool] | None = None  # Kubernetes Event (reason, warning) on entering
    notify: EventKind | None = None  # the notification sent on entering
    pr_icon: str = ":x:"  # its marker in a pull-request comment
    in_sync: bool = False  # counts as in sync (not in `mlflow_gitops_out_of_sync`)


class State(str, Enum):
    """An entry's state, best first (the order is the severity)."""

    traits: Traits

    def __new__(cls, word: str, traits: Traits) -> State:
        member = str.__new__(cls, word)
        member._value_ = word
        member.traits = traits
        return member

    Synced = "Synced", Traits("success", logging.INFO, "synced", "✓", "success",
                              pr_icon=":white_check_mark:", in_sync=True)
    Verifying = "Verifying", Traits("success", logging.INFO, "verifying", "◔", "pending",
                                    ("Verifying", False), pr_icon=":hourglass:", in_sync=True)
    OutOfSync = "OutOfSync", Traits("success", logging.INFO, "outofsync", "↻", "pending",
                                    pr_icon=":arrows_counterclockwise:")
    Waiting = "Waiting", Traits("waiting", logging.INFO, "waiting", "◷", "pending",
                                ("PromotionWaiting", False), "waiting", ":hourglass:")
    Held = "Held", Traits("held", logging.INFO, "held", "‖", "pending", ("Held", False),
                          "held", ":pause_button:")
    Refused = "Refused", Traits("refused", logging.WARNING, "refused", "⊘", "failure",
                                ("PromotionRefused", True), "refused", ":no_entry:")
    RolledBack = "RolledBack", Traits("held", logging.WARNING, "rolledback", "↶", "failure",
                                      ("RolledBack", True), "rolled_back", ":rewind:")
    Error = "Error", Traits("error", logging.ERROR, "error", "✗", "failure",
                            ("ReconcileFailed", True), "error", ":x:")

    def __str__(self) -> str:
        return str(self._value_)

    def __format__(self, spec: str) -> str:
        return format(str(self._value_), spec)

    def __hash__(self) -> int:
        return hash(str(self._value_))  # equal to its word, so it hashes as the word

    @property
    def severity(self) -> int:
        """Higher is worse (a pass's overall state is the worst of its entries')."""
        return _ranks()[self]

    @staticmethod
    def parse(word: str) -> State | None:
        """The state called `word`, or None for a word this version does not know."""
        return word if isinstance(word, State) else _by_word().get(word)

    @staticmethod
    def of(word: str) -> State:
        """The state called `word`; ValueError for a word this version does not know."""
        state = State.parse(word)
        if state is None:
            raise ValueError(f"{word!r} is not a state ({', '.join(STATES)})")
        return state


@cache
def _ranks() -> dict[State, int]:
    return {state: rank for rank, state in enumerate(State)}


@cache
def _by_word() -> dict[str, State]:
    return {str(state): state for state in State}


#: Every state, best first.
STATES: tuple[State, ...] = tuple(State)
#: Every `reconcile_total{result}` label a state can give, in severity order.
RESULTS: tuple[str, ...] = tuple(dict.fromkeys(s.traits.result for s in State))

#: Why a model did not converge (ModelError.kind) → its state; any other kind is an Error.
_OF_KIND: dict[ErrorKind, State] = {"waiting": State.Waiting, "held": State.Held,
                                     "gate": State.Refused}


def state_of(error: ModelError) -> State:
    """The state a model that did not converge is in, from why it did not."""
    return _OF_KIND.get(error.kind, State.Error)


def worst(states: Iterable[State | str]) -> State:
    """The most severe of `states` (Synced when there are none)."""
    return max((State.of(s) for s in states), key=lambda s: s.severity, default=State.Synced)


def least_happy_first(words: Iterable[str]) -> list[str]:
    """`words` (state words, known or not) from the most to the least severe; a word this
    version does not know goes first, so it is seen."""
    def rank(word: str) -> tuple[int, str]:
        state = State.parse(word)
        return (-state.severity if state is not None else -len(STATES), word)
    return sorted(words, key=rank)
