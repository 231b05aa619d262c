"""Which commit statuses and notifications a pass causes, decided from the same
status rows as everything else, and sent once: a commit status once per (commit,
environment, state), a notification once per (commit, environment, model, event), drift once
per drift episode. Delivery (and its retries) is the FeedbackPort's business; this module
never waits for it.

Memory of what was sent lives here, in the process: after a restart a commit's current
statuses are set again (the same values; the forge keeps the newest per context) and
lasting Waiting / Held / Refused / Error entries are notified once more."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import PurePosixPath

from mlflow_gitops.core.diagnostics import Diagnostic
from mlflow_gitops.core.feedback import CommitStatus, Notification, StatusState
from mlflow_gitops.core.model import DesiredState, Environment
from mlflow_gitops.core.ports import FeedbackPort
from mlflow_gitops.core.states import State, worst
from mlflow_gitops.loop.executor import Applied
from mlflow_gitops.loop.reconciler import PassResult
from mlflow_gitops.planning.status import Key, ModelStatus

_REMEMBERED = 10_000  # sent keys kept; the oldest are forgotten first


def _content(env: Environment) -> object:
    return (env.target, env.registry, env.sync, env.promotion,
            tuple(sorted((m, e.version) for m, e in env.models.items())))


def touched(previous: DesiredState | None, desired: DesiredState) -> frozenset[str]:
    """Environments whose desired state `desired`'s commit changed (all, with nothing to
    compare with, e.g. the first commit after a start)."""
    if previous is None:
        return frozenset(e.name for e in desired.environments)
    before = {e.name: _content(e) for e in previous.environments}
    return frozenset(e.name for e in desired.environments if before.get(e.name) != _content(e))


def changed_entries(previous: DesiredState | None, desired: DesiredState
                    ) -> frozenset[Key] | None:
    """The (environment, model) entries the commit changed (None: all, nothing to compare
    with). A change the controller makes to any other entry is a heal of drift, whatever the
    planner's bookkeeping calls it."""
    if previous is None:
        return None
    before = previous.by_name()
    out: set[Key] = set()
    for env in desired.environments:
        old = before.get(env.name)
        same_env = old is not None and (old.target, old.registry, old.sync, old.promotion) == (
            env.target, env.registry, env.sync, env.promotion)
        for model in set(env.models) | set(old.models if old is not None else ()):
            was = old.models.get(model) if old is not None else None
            now = env.models.get(model)
            if not same_env or (was.version if was else None) != (now.version if now else None):
                out.add((env.name, model))
    return frozenset(out)


def when(until: float | None) -> str:
    if until is None:
        return ""
    return datetime.fromtimestamp(until, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _reason(row: ModelStatus) -> str:
    """A row's message without its `file:line:` prefix (the status names the environment)."""
    prefix = f"{row.file}:{row.line}: "
    return row.message[len(prefix):] if row.message.startswith(prefix) else row.message


def environment_status(sha: str, environment: str, rows: Sequence[ModelStatus],
                       changes: Sequence[str]) -> CommitStatus:
    """The commit status of one environment after a pass: success (what changed), failure
    (the first reason), or pending with the state's word (Waiting, Held, OutOfSync)."""
    state = worst(row.sync for row in rows)
    first = next((row for row in rows if row.sync == state), None)
    forge: StatusState = state.traits.forge
    if state == State.Synced:
        text = ("applied: " + "; ".join(changes)) if changes else "in sync: nothing to change"
    elif forge == "failure":
        text = f"{state}: {_reason(first)}" if first else str(state)
    else:
        text = str(state)
        if first is not None and state in (State.Waiting, State.Verifying) and \
                first.until is not None:
            text += f" until {when(first.until)}"
        if first is not None:
            text += f": {_reason(first)}"
    return CommitStatus(sha, environment, forge, state, text)


class Feedback:
    """Decides and de-duplicates feedback for one controller; sends through `port`."""

    def __init__(self, port: FeedbackPort) -> None:
        self.port = port
        self._commit: str | None = None
        self._touched: frozenset[str] = frozenset()
        self._entries: frozenset[Key] | None = frozenset()  # what the commit changed
        self._changes: dict[str, list[str]] = {}  # environment → changes of this commit
        self._sent: OrderedDict[tuple[str, ...], None] = OrderedDict()
        self._drifting: frozenset[Key] = frozenset()
        #: Every change written since the last result, by any phase of the pass (a new
        #: commit's changes are applied before the full pass, which then applies nothing).
        self._written: list[Applied] = []

    def desired_changed(self, previous: DesiredState | None, desired: DesiredState) -> None:
        """A new commit is in force: its touched environments get statuses from now on."""
        self._commit = desired.commit
        self._touched = touched(previous, desired)
        self._entries = changed_entries(previous, desired)
        self._changes = {}

    def _from_git(self, environment: str, model: str) -> bool:
        return self._entries is None or (environment, model) in self._entries

    def applying(self, done: Applied) -> None:
        """A change of the commit is being written: `pending` on its environment, once."""
        change = done.change
        if change.reason == "verification":
            return  # an automatic rollback: its own notification (rolled_back) says it
        self._written.append(done)
        if done.commit != self._commit or not self._from_git(change.environment, change.model):
            return
        self._changes.setdefault(change.environment, []).append(change.describe())
        if change.environment in self._touched:
            self._status(CommitStatus(done.commit, change.environment, "pending", "Applying",
                                      f"applying commit {done.commit[:12]}"))

    def invalid(self, sha: str, diagnostics: Sequence[Diagnostic]) -> None:
        first = str(diagnostics[0]) if diagnostics else "invalid"
        self._notify(Notification("invalid_commit", sha, "", "", State.Error,
                                  f"commit {sha[:12]} is invalid and not applied: {first}"
                                  + (f" (and {len(diagnostics) - 1} more)"
                                     if len(diagnostics) > 1 else "")))
        # The environment files at fault get a red status on the merged commit, so the
        # person who merged sees it where they look (the last good state stays in force).
        firsts: dict[str, Diagnostic] = {}
        for d in diagnostics:
            stem = PurePosixPath(d.file).stem
            if PurePosixPath(d.file).suffix in (".yaml", ".yml") and stem not in firsts:
                firsts[stem] = d
        for environment, d in sorted(firsts.items()):
            self._status(CommitStatus(sha, environment, "failure", "Invalid",
                                      f"Invalid, not applied: {d.file}:{d.line}: {d.message}"))

    def result(self, result: PassResult) -> None:
        commit = result.desired.commit
        rows_by_env: dict[str, list[ModelStatus]] = {}
        for row in result.status:
            rows_by_env.setdefault(row.environment, []).append(row)
        if commit == self._commit and not result.registry_errors:
            for env in sorted(self._touched):
                status = environment_status(commit, env, rows_by_env.get(env, []),
                                            self._changes.get(env, []))
                if self._entries is None and status.word == State.Synced and \
                        env not in self._changes:
                    continue  # after a start: never overwrite what the last run said
                self._status(status)
        applied, self._written = self._written, []
        # By the commit each change was written for: the commit lane may have applied a
        # newer commit while this pass (planned with an older one) was running.
        by_model: dict[tuple[str, str, str], list[Applied]] = {}
        for done in applied:
            by_model.setdefault((done.commit, done.change.environment, done.change.model),
                                []).append(done)
        healed: set[Key] = set()
        for (sha, env, model), dones in sorted(by_model.items()):
            git = [d.change.describe() for d in dones if self._from_git(env, model)]
            if git:
                self._notify(Notification("applied", sha, env, model, State.Synced,
                                          f"{env}/{model}: applied commit {sha[:12]}",
                                          changes=tuple(git)))
            fixed = [d.change.describe() for d in dones if not self._from_git(env, model)]
            if fixed:
                healed.add((env, model))
                self._drift((env, model), sha, State.Synced,
                            f"{env}/{model}: a change made outside git was reverted", fixed)
        drifting = set(healed)
        for row in result.status:
            key = (row.environment, row.model)
            event = row.sync.traits.notify
            if event is not None:
                self._notify(Notification(event, commit, row.environment,
                                          row.model, row.sync, row.message, row.until))
            elif row.drift:
                drifting.add(key)
                self._drift(key, commit, row.sync, f"{row.environment}/{row.model}: live "
                            "differs from git and is left alone (self_heal: false)", ())
        self._drifting = frozenset(drifting)

    def verification(self, event: Notification) -> None:
        """A verification outcome (verified, rolled_back): once per commit, entry, event."""
        self._notify(event)

    def _drift(self, key: Key, commit: str, state: str, message: str,
               changes: Iterable[str]) -> None:
        if key in self._drifting:
            return  # the same episode: told once
        self._port_notify(Notification("drift", commit, key[0], key[1], state, message,
                                        changes=tuple(changes)))

    def _notify(self, notification: Notification) -> None:
        n = notification
        if self._once(("event", n.commit, n.environment, n.model, n.event)):
            self._port_notify(n)

    def _port_notify(self, notification: Notification) -> None:
        self.port.notify(notification)

    def _status(self, status: CommitStatus) -> None:
        if self._once(("status", status.sha, status.environment, status.word)):
            self.port.commit_status(status)

    def _once(self, key: tuple[str, ...]) -> bool:
        if key in self._sent:
            return False
        self._sent[key] = None
        while len(self._sent) > _REMEMBERED:
            self._sent.popitem(last=False)
        return True
