"""`run`: trust at apply wired from the `trust:` config section, checked at start so a
controller never runs with rules it cannot enforce. An allowed-signers file that cannot be
read, GPG keys that do not import, or approvals without a forge stop the start with one line
(and, should the allowed-signers file become unreadable later, every guarded change is
refused until it reads again: fail closed either way)."""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from mlflow_gitops.cli.common import fatal

if TYPE_CHECKING:
    from mlflow_gitops.adapters.config import ControllerConfig
    from mlflow_gitops.adapters.git.source import GitSource
    from mlflow_gitops.core.ports import PolicyFactory
    from mlflow_gitops.loop.cycle import Source
    from mlflow_gitops.loop.trustfacts import TrustReads

log = logging.getLogger("mlflow_gitops.run")


def controller_policy(trust: TrustReads | None) -> Callable[[Source], PolicyFactory]:
    """The loop's `policy` (source → PolicyFactory): the promotion policy, plus the trust
    verdict on the facts the pass read (`trust`) when the config has a `trust:` section."""
    from mlflow_gitops.cli.policies import policy_for_source
    from mlflow_gitops.policy.trustgate import guarded

    if trust is None:
        return policy_for_source
    rules = trust.rules
    return lambda src: guarded(policy_for_source(src), rules, at_apply=True)


def controller_trust(config: ControllerConfig, source: GitSource, cache: Path, repo_url: str,
                     hide: Callable[[str], None]) -> TrustReads | None:
    """Trust at apply's rules and the TrustPort that reads their facts, when the config has
    a `trust:` section; checked here, so that the controller never starts with rules it
    cannot enforce."""
    trust = config.trust
    if trust is None:
        return None
    from mlflow_gitops.adapters.forge_target import configured
    from mlflow_gitops.adapters.git.signatures import Signatures
    from mlflow_gitops.adapters.trust import TrustReader
    from mlflow_gitops.core.errors import ConfigError
    from mlflow_gitops.core.trust import TrustRules
    from mlflow_gitops.loop.trustfacts import TrustReads

    rules = TrustRules(frozenset(trust.environments), trust.signed_commits is not None,
                       trust.approvals.reviews if trust.approvals else 0)
    signatures = None
    if trust.signed_commits is not None:
        keys = trust.signed_commits
        home = _keyring(keys.gpg_public_keys_file, cache / "trust-gnupg") \
            if keys.gpg_public_keys_file else None
        signatures = Signatures(keys.allowed_signers_file, home,
                                _private_dir(cache / "trust-gnupg-empty"))
        try:
            signatures.check_readable()
        except ConfigError as exc:
            fatal(f"{exc}: the controller does not start without the keys it must check")
    forge = None
    if trust.approvals is not None:
        forge = configured(config, repo_url)
        if forge is not None:
            hide(forge.token)
    reader = TrustReader(source.cache_dir, source.branch, rules, signatures, forge,
                         recheck=trust.approvals.recheck_seconds if trust.approvals else 60.0)
    log.info("trust at apply", extra={"fields": {
        "environments": sorted(rules.environments), "checks": rules.describe(),
        "forge": forge.label if forge else None}})
    return TrustReads(rules, reader)


def _private_dir(path: Path) -> str:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)  # gpg refuses a home others can read
    return str(path)


def _keyring(keys_file: str, home: Path) -> str:
    """A private GnuPG home holding exactly the keys in `keys_file`: what "allowed" means
    for a GPG signature. Refuses to start when the file does not give at least one key."""
    if not Path(keys_file).is_file():
        fatal(f"trust.signed_commits.gpg_public_keys_file {keys_file} cannot be read")
    folder = _private_dir(home)
    for stale in Path(folder).glob("pubring*"):
        stale.unlink()  # the keys are the file's, not what an earlier start imported
    try:
        gpg = ["gpg", "--batch", "--no-autostart", "--homedir", folder]
        done = subprocess.run([*gpg, "--import", keys_file], capture_output=True, timeout=30,
                              check=False)
        listed = subprocess.run([*gpg, "--with-colons", "--list-keys"], capture_output=True,
                                timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        fatal(f"trust.signed_commits.gpg_public_keys_file: gpg cannot run ({type(exc).__name__});"
              " install gnupg or use SSH signatures (allowed_signers_file)")
    if done.returncode != 0 or b"\npub:" not in b"\n" + listed.stdout:
        fatal(f"trust.signed_commits.gpg_public_keys_file {keys_file} holds no GPG public key "
              "that gpg can import (export them with gpg --export --armor KEYID)")
    return folder
