"""Trust at apply (values only): the rules a guarded environment's changes must meet, and
the facts gathered about the commit that brought a change (its signatures, the pull request
that merged it and its approvals). mlflow_gitops.policy.trust judges them; adapters gather
them (git for signatures, the forge for approvals)."""

from __future__ import annotations

from dataclasses import dataclass

#: `%G?` letters (git-log "pretty formats"): G good, B bad, U good with unknown validity, X/Y
#: expired signature/key, R revoked key, E cannot be checked, N no signature.
GOOD = "G"


@dataclass(frozen=True)
class TrustRules:
    """What the controller config's `trust:` asks of the environments it names."""

    environments: frozenset[str]
    signed_commits: bool = False
    reviews: int = 0  # approving reviews needed; 0: approvals are not checked

    def guards(self, environment: str) -> bool:
        return environment in self.environments and (self.signed_commits or self.reviews > 0)

    def describe(self, rollback: bool = False) -> str:
        """What the controller checks at apply, for `plan` and `diff`."""
        parts = []
        if self.signed_commits:
            parts.append("a signature by an allowed key on the commit and its merge")
        if self.reviews and not rollback:
            parts.append(f"{self.reviews} approving review{'s' if self.reviews != 1 else ''} "
                         "by people other than the author")
        return " and ".join(parts)


@dataclass(frozen=True)
class Signature:
    """What git said about one commit's signature (`git log --format=%G?…`)."""

    sha: str
    status: str  # %G? letter
    key: str = ""  # %GK: the key's fingerprint
    signer: str = ""  # %GS: the allowed signer's principal (SSH) or user id (GPG)
    kind: str = ""  # "ssh", "gpg" or "" (unsigned)
    trusted: bool = False  # the key is in the allowed set (SSH principal found, GPG keyring)


@dataclass(frozen=True)
class Approvals:
    """The pull request that brought a commit to the branch, as the forge answered."""

    pull: str = ""  # "#12" (GitHub) or "!12" (GitLab); "" when none merged it
    author: str = ""
    approvers: tuple[str, ...] = ()  # approving now, the author excluded
    author_approved: bool = False  # the author approved their own pull request


@dataclass(frozen=True)
class EntryTrust:
    """The facts about one guarded entry's change: the commit that last changed the entry,
    the first-parent commit that brought it to the branch, and what each rule needs."""

    commit: str  # the commit that last changed the entry
    merge: str  # the branch's own commit that brought it (== commit for a direct push)
    signatures: tuple[Signature, ...] = ()
    approvals: Approvals | None = None  # None: not checked, or see `error`
    error: str = ""  # a fact could not be read (forge or git); the change waits
    retry_at: float | None = None  # with `error`: when the controller reads it again
