"""The TrustPort for the controller: reads the facts trust at apply judges from the git
cache (which commits brought a change, their signatures) and from the forge (the pull
request's approvals), with the caching and backoff that keep a broken forge from becoming
an error storm.

Caching, and what it must not do to a dismissed review:
- a commit's place in history and its signature never change for a given sha and key set:
  kept (bounded) for as long as the allowed-signers file reads the same;
- an approving answer is never reused: each pass that may apply the change asks again, so
  a review dismissed after the merge stops the change until it is applied;
- a refusing answer (too few approvals, no pull request) is kept for `recheck` seconds so a
  refused change does not cost forge calls on every pass; a new review is seen within it;
- a forge that cannot answer makes the change wait, asked again after 5 s, 10 s, … up to
  5 minutes (the loop wakes for it), never applied unverified."""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Generic, TypeVar

from mlflow_gitops.adapters.approvals import ForgeUnavailable, approvals
from mlflow_gitops.adapters.forge_target import ForgeTarget
from mlflow_gitops.adapters.git.signatures import Signatures, change_of
from mlflow_gitops.core.errors import GitOpsError
from mlflow_gitops.core.model import Environment
from mlflow_gitops.core.trust import Approvals, EntryTrust, Signature, TrustRules

log = logging.getLogger(__name__)
CACHE_SIZE = 1024
BACKOFF_FIRST, BACKOFF_MAX = 5.0, 300.0

K = TypeVar("K")
V = TypeVar("V")


class Bounded(Generic[K, V]):
    """A dict that forgets its oldest entries beyond `size`."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self.items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        return self.items.get(key)

    def put(self, key: K, value: V) -> None:
        self.items[key] = value
        self.items.move_to_end(key)
        while len(self.items) > self.size:
            self.items.popitem(last=False)

    def pop(self, key: K) -> None:
        self.items.pop(key, None)


class TrustReader:
    """Facts about guarded changes in the repository cached at `repo` (branch `branch`)."""

    def __init__(self, repo: Path, branch: str, rules: TrustRules,
                 signatures: Signatures | None, forge: ForgeTarget | None,
                 recheck: float = 60.0, clock: Callable[[], float] = time.time) -> None:
        self.repo = repo
        self.branch = branch
        self.rules = rules
        self.signatures = signatures
        self.forge = forge
        self.recheck = recheck
        self.clock = clock
        self._changes: Bounded[tuple[str, str, int, str], tuple[str, str]] = Bounded()
        self._signed: Bounded[tuple[str, str], EntryTrust] = Bounded()
        self._refusals: Bounded[tuple[str, str], tuple[Approvals, float]] = Bounded()
        self._failures: Bounded[tuple[str, str], tuple[int, float, str, bool]] = Bounded()

    def entry_trust(self, environment: Environment, key: str, version: int, commit: str,
                    approvals: bool = True) -> EntryTrust:
        try:
            change = self._change(environment.file, key, version, commit)
        except GitOpsError as exc:
            return EntryTrust(commit, commit, error=str(exc),
                              retry_at=self.clock() + BACKOFF_FIRST if exc.transient else None)
        facts = EntryTrust(*change)
        if self.rules.signed_commits and self.signatures is not None:
            try:
                facts = replace(facts, signatures=self._signed_facts(*change))
            except GitOpsError as exc:  # e.g. the allowed-signers file is gone: fail closed
                return replace(facts, error=str(exc))
        if approvals and self.rules.reviews and self.forge is not None:
            facts = self._approved(facts, self.forge)
        return facts

    def _change(self, file: str, key: str, version: int, commit: str) -> tuple[str, str]:
        ident = (file, key, version, commit)
        found = self._changes.get(ident)
        if found is None:
            found = change_of(self.repo, file, key, version, commit)
            self._changes.put(ident, found)
        return found

    def _signed_facts(self, commit: str, merge: str) -> tuple[Signature, ...]:
        assert self.signatures is not None
        self.signatures.check_readable()
        ident = (f"{commit}:{merge}", self._keys_digest())
        cached = self._signed.get(ident)
        if cached is None:
            found = self.signatures.verify(self.repo, list(dict.fromkeys((commit, merge))))
            cached = EntryTrust(commit, merge, tuple(found.values()))
            self._signed.put(ident, cached)
        return cached.signatures

    def _keys_digest(self) -> str:
        """Changes when the allowed-signers file does: cached verdicts follow the keys."""
        path = self.signatures.allowed_signers if self.signatures else None
        if path is None:
            return ""
        try:
            return hashlib.sha256(Path(path).read_bytes()).hexdigest()
        except OSError:
            return "unreadable"

    def _approved(self, facts: EntryTrust, forge: ForgeTarget) -> EntryTrust:
        ident = (facts.commit, facts.merge)
        now = self.clock()
        failed = self._failures.get(ident)
        if failed is not None and now < failed[1]:
            return replace(facts, error=failed[2], retry_at=failed[1] if failed[3] else None)
        refused = self._refusals.get(ident)
        if refused is not None and now < refused[1]:
            return replace(facts, approvals=refused[0])
        try:
            found = approvals(forge, facts.commit, facts.merge, self.branch)
        except ForgeUnavailable as exc:
            count = (failed[0] if failed else 0) + 1
            retry = now + min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (count - 1))
            message = f"cannot read approvals from {forge.remote.label} ({exc})"
            self._failures.put(ident, (count, retry, message, True))
            return replace(facts, error=message, retry_at=retry)
        except GitOpsError as exc:  # 401/403/404 or a malformed answer: refused, said why
            message = f"cannot read approvals: {exc}"
            self._failures.put(ident, (0, now + self.recheck, message, False))
            return replace(facts, error=message)
        self._failures.pop(ident)
        if len(found.approvers) < self.rules.reviews:
            self._refusals.put(ident, (found, now + self.recheck))
        else:
            self._refusals.pop(ident)
        return replace(facts, approvals=found)
