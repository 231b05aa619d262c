"""The promotion policy as each command sees it. Every command judges a promotion by the
same evidence, the controller's apply records and the live state in the registry, so `plan`,
`diff` (the pull-request comment), `apply` and the controller give the same verdict on the
same registry. Git history is no evidence: a commit's dates and order are the pull request
author's to choose. Trust at apply (`trust:` in the controller config) is the controller's
alone: the other commands say, for each change into a guarded environment, what it will
check."""

from __future__ import annotations

from pathlib import Path

from mlflow_gitops.core.ports import PolicyFactory
from mlflow_gitops.core.trust import TrustRules
from mlflow_gitops.loop.cycle import Source
from mlflow_gitops.policy.facts import make_policy
from mlflow_gitops.policy.trustgate import guarded


def local_policy(config: str | None = None) -> PolicyFactory:
    """`plan` / `apply` on a folder."""
    return _announced(make_policy(), config)


def diff_policy(repo: Path, base: str, config: str | None = None) -> PolicyFactory:
    """`diff BASE HEAD --repo DIR`: the same verdict as apply would give after the merge."""
    return _announced(make_policy(), config)


def policy_for_source(source: Source) -> PolicyFactory:
    """`run`: the controller's own policy, independent of what the git source says."""
    return make_policy()


def trust_rules(config: str | None) -> TrustRules | None:
    """The `trust:` rules of the controller config file, if it has any."""
    from mlflow_gitops.adapters.config import load_config

    if not config:
        return None
    trust = load_config(config).trust
    if trust is None:
        return None
    return TrustRules(frozenset(trust.environments), trust.signed_commits is not None,
                      trust.approvals.reviews if trust.approvals else 0)


def _announced(base: PolicyFactory, config: str | None) -> PolicyFactory:
    rules = trust_rules(config)
    return base if rules is None else guarded(base, rules, at_apply=False)
