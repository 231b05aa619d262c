"""The promotion policy as each command sees it. Every command judges a promotion by the
same evidence, the controller's apply records and the live state in the registry,
so `plan`, `diff` (the pull-request comment), `apply` and the controller give the same
verdict on the same registry. Git history is no evidence: a commit's dates and order are the
pull request author's to choose."""

from __future__ import annotations

from pathlib import Path

from mlflow_gitops.adapters.git.source import GitSource
from mlflow_gitops.core.ports import PolicyFactory
from mlflow_gitops.policy.facts import make_policy


def local_policy() -> PolicyFactory:
    """`plan` / `apply` on a folder."""
    return make_policy()


def diff_policy(repo: Path, base: str) -> PolicyFactory:
    """`diff BASE HEAD --repo DIR`: the same verdict as apply would give after the merge."""
    return make_policy()


def policy_for_source(source: GitSource) -> PolicyFactory:
    """`run`: the controller's own policy, independent of what the git source says."""
    return make_policy()
