"""What the web page shows, as values: the controller's view at one moment
(`PageData`) and the environments × models and environments × prompts grids built from its
status rows. Pure; the page
adapter renders these with templates and never looks inside the loop.

State words come from the status rows; their colour, symbol and order are the State's
(mlflow_gitops.core.states). A word this module does not know still shows (with a neutral
colour), so a page never breaks on one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from mlflow_gitops.core.model import DesiredState, EntryKind, Environment, Snapshot
from mlflow_gitops.core.plan import Plan
from mlflow_gitops.core.states import State, least_happy_first
from mlflow_gitops.planning.status import ModelStatus
from mlflow_gitops.planning.timeline import ApplyRecord

#: The class and symbol of a word no State has.
NEUTRAL = ("unknown", "•")


def state_style(word: str) -> tuple[str, str]:
    """(css class, symbol) of a state word: the word and the symbol carry the meaning, the
    colour only helps."""
    state = State.parse(word)
    return (state.traits.css, state.traits.symbol) if state is not None else NEUTRAL


@dataclass(frozen=True)
class PageData:
    """The controller's view for the page: taken once per request, never mutated."""

    rows: tuple[ModelStatus, ...] = ()
    desired: DesiredState | None = None
    snapshots: Mapping[str, Snapshot] = field(default_factory=dict)
    plan: Plan | None = None
    last_seen_commit: str | None = None
    last_applied_commit: str | None = None
    invalid_commit: str | None = None
    last_pass_at: str | None = None
    last_pass_outcome: str = "pending"
    last_error: str | None = None
    leader: bool = True
    recent: tuple[ApplyRecord, ...] = ()  # newest first


@dataclass(frozen=True)
class Column:
    environment: str
    target: str
    registry: str


@dataclass(frozen=True)
class Row:
    model: str
    cells: tuple[ModelStatus | None, ...]  # one per column; None: not in that environment

    @property
    def registries(self) -> tuple[str, ...]:
        """The registries this row's cells live on (the MLflow UI link is the default's)."""
        return tuple(sorted({c.registry for c in self.cells if c is not None}))


def state_of(row: ModelStatus) -> str:
    """The row's state word."""
    return str(row.state)


def grid(rows: Sequence[ModelStatus], desired: DesiredState | None = None,
         kind: EntryKind | None = None) -> tuple[tuple[Column, ...], tuple[Row, ...]]:
    """Columns in promotion order (see `pipeline`), then any others seen in the rows; one
    row per model, sorted by name. With `kind`, only entries of that kind (models and
    prompts are shown apart) and only the environments that list one of them (a stage
    environment never lists a prompt; an environment listing nothing is a models column)."""
    if kind is not None:
        rows = [r for r in rows if r.kind == kind]
    order: list[Column] = []
    seen: set[str] = set()
    for env in pipeline(desired) if desired else ():
        if kind is not None and not _lists(env, kind):
            continue
        order.append(Column(env.name, str(env.target), env.registry))
        seen.add(env.name)
    for r in rows:
        if r.environment not in seen:
            order.append(Column(r.environment, r.target, r.registry))
            seen.add(r.environment)
    index = {c.environment: i for i, c in enumerate(order)}
    by_model: dict[str, list[ModelStatus | None]] = {}
    for r in rows:
        cells = by_model.setdefault(r.model, [None] * len(order))
        cells[index[r.environment]] = r
    out = []
    for model in sorted(by_model):
        out.append(Row(model, tuple(by_model[model])))
    return tuple(order), tuple(out)


def _lists(env: Environment, kind: EntryKind) -> bool:
    """Whether `env` gets a column in the `kind` grid."""
    kinds = {entry.kind for entry in env.models.values()}
    return kind in kinds or (kind == "model" and not kinds)


def split(rows: Sequence[ModelStatus]) -> tuple[tuple[ModelStatus, ...],
                                                 tuple[ModelStatus, ...]]:
    """(model rows, prompt rows)."""
    return (tuple(r for r in rows if r.kind != "prompt"),
            tuple(r for r in rows if r.kind == "prompt"))


def pipeline(desired: DesiredState) -> list[Environment]:
    """Environments in the order a version travels: by the length of their `promotion.from`
    chain, then by name. The page's columns and `status` use this one order."""
    by_name = desired.by_name()

    def depth(env: Environment) -> int:
        seen: set[str] = set()
        while env.promotion and env.promotion.from_env in by_name and env.name not in seen:
            seen.add(env.name)
            env = by_name[env.promotion.from_env]
        return len(seen)

    return sorted(desired.environments, key=lambda e: (depth(e), e.name))


def counts(rows: Sequence[ModelStatus]) -> list[tuple[str, int]]:
    """How many (environment, model) pairs are in each state, least happy first."""
    tally: dict[str, int] = {}
    for r in rows:
        word = state_of(r)
        tally[word] = tally.get(word, 0) + 1
    return [(word, tally[word]) for word in least_happy_first(tally)]


def unsettled(rows: Sequence[ModelStatus]) -> int:
    """Entries not where git wants them yet (anything but Synced and Verifying): the page
    does not call the branch 'up to date' while there are any."""
    return sum(1 for r in rows if state_of(r) not in ("Synced", "Verifying"))
