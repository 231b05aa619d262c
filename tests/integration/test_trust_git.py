"""Trust at apply, the git side: which commits brought an entry's change, and their
signatures exactly as git checks them (real keys from ssh-keygen and gpg, real commits
signed by git)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from mlflow_gitops.adapters.git.signatures import Signatures, change_of
from mlflow_gitops.core.errors import ConfigError
from mlflow_gitops.core.trust import EntryTrust, TrustRules
from mlflow_gitops.policy.trust import judge

from tests.support.envfiles import HEADER
from tests.support.gitrepos import git, init_repo, write_files
from tests.support.signing import (
    SshKey,
    allowed_signers,
    commit_gpg,
    commit_signed,
    gpg_available,
    gpg_key,
    merge_signed,
    ssh_key,
    stop_gpg_agents,
    tamper_tree,
)

FILE = "environments/production.yaml"
RULES = TrustRules(frozenset({"production"}), signed_commits=True)


def _prod(version: int, other: int = 1) -> dict[str, str]:
    return {FILE: HEADER + f"target:\n  stage: Production\nmodels:\n  fraud: {version}\n"
                  f"  churn: {other}\n"}


def _stage(work: Path, files: dict[str, str]) -> None:
    write_files(work, files)
    git(work, "add", "-A")


@pytest.fixture()
def keys(tmp_path: Path) -> dict[str, SshKey]:
    return {"alice": ssh_key(tmp_path / "keys", "alice"),
            "mallory": ssh_key(tmp_path / "keys", "mallory")}


@pytest.fixture()
def checker(tmp_path: Path, keys: dict[str, SshKey]) -> Signatures:
    signers = allowed_signers(tmp_path / "allowed_signers", ("alice@example.com", keys["alice"]))
    empty = tmp_path / "empty-gnupg"
    empty.mkdir(mode=0o700)
    return Signatures(str(signers), None, str(empty))


def _verdict(checker: Signatures, repo: Path, version: int, tip: str) -> str:
    commit, merge = change_of(repo, FILE, "fraud", version, tip)
    facts = EntryTrust(commit, merge, tuple(checker.verify(repo, [commit, merge]).values()))
    verdict = judge(RULES, facts)
    return "allowed" if verdict.allowed else verdict.message


def test_ssh_signatures_allowed_other_key_unsigned_and_tampered(
        tmp_path: Path, keys: dict[str, SshKey], checker: Signatures) -> None:
    """An allowed key passes; another key, no signature and a tampered tree are refused."""
    repo = init_repo(tmp_path / "repo")
    _stage(repo, _prod(1))
    commit_signed(repo, "start", keys["alice"])
    _stage(repo, _prod(2))
    good = commit_signed(repo, "fraud v2", keys["alice"])
    assert _verdict(checker, repo, 2, good) == "allowed"
    _stage(repo, _prod(3))
    evil = commit_signed(repo, "fraud v3", keys["mallory"])
    assert _verdict(checker, repo, 3, evil).startswith(
        f"commit {evil[:7]} signed by a key not in allowed_signers (SHA256:")
    _stage(repo, _prod(4))
    unsigned = commit_signed(repo, "fraud v4", None)
    assert _verdict(checker, repo, 4, unsigned) == f"unsigned commit {unsigned[:7]}"
    # The signed v2 commit, its tree swapped for the unsigned v4 tree: git says B.
    forged = tamper_tree(repo, good, unsigned)
    assert _verdict(checker, repo, 4, forged) == \
        f"bad signature on commit {forged[:7]}: its content is not what was signed"


def test_the_entry_change_is_found_past_later_commits_and_through_a_merge(
        tmp_path: Path, keys: dict[str, SshKey], checker: Signatures) -> None:
    """A later commit that changes another entry does not count; a merged branch's commit
    and its merge commit are both checked, so an unsigned merge is refused."""
    repo = init_repo(tmp_path / "repo")
    _stage(repo, _prod(1))
    commit_signed(repo, "start", keys["alice"])
    git(repo, "checkout", "-q", "-b", "feature")
    _stage(repo, _prod(2))
    change = commit_signed(repo, "fraud v2", keys["alice"])
    git(repo, "checkout", "-q", "main")
    merge = merge_signed(repo, "feature", "Merge pull request #7", None)
    assert change_of(repo, FILE, "fraud", 2, merge) == (change, merge)
    assert _verdict(checker, repo, 2, merge) == f"unsigned commit {merge[:7]}"
    _stage(repo, _prod(2, other=5))  # churn only: fraud's change is still the merge
    later = commit_signed(repo, "churn v5", keys["alice"])
    assert change_of(repo, FILE, "fraud", 2, later) == (change, merge)
    git(repo, "reset", "-q", "--hard", merge + "^1")
    signed_merge = merge_signed(repo, "feature", "Merge pull request #7", keys["alice"])
    assert _verdict(checker, repo, 2, signed_merge) == "allowed"


def test_an_unreadable_allowed_signers_file_fails_closed(tmp_path: Path,
                                                         checker: Signatures) -> None:
    """A missing (or empty) allowed-signers file is an error, never "no key needed"."""
    assert checker.allowed_signers is not None
    os.remove(checker.allowed_signers)
    with pytest.raises(ConfigError, match="allowed_signers_file .* cannot be read"):
        checker.check_readable()
    Path(checker.allowed_signers).write_text("# nobody\n")
    with pytest.raises(ConfigError, match="lists no key"):
        checker.verify(tmp_path, ["0" * 40])


@pytest.mark.skipif(not gpg_available(), reason="gpg is not installed")
def test_gpg_signatures_by_a_key_in_the_allowed_keyring(tmp_path: Path) -> None:
    """A GPG signature counts only if its key is in the keyring the controller is given."""
    homes = (tmp_path / "alice-gnupg", tmp_path / "eve-gnupg", tmp_path / "allowed-gnupg")
    try:
        _gpg_case(tmp_path, *homes)
    finally:
        stop_gpg_agents(*homes)


def _gpg_case(tmp_path: Path, alice: Path, eve: Path, allowed: Path) -> None:
    from mlflow_gitops.cli.trust import _keyring

    fingerprint, public = gpg_key(alice, "alice@example.com")
    other, _ = gpg_key(eve, "eve@example.com")
    ring = _keyring(str(public), allowed)
    empty = tmp_path / "empty"
    empty.mkdir(mode=0o700)
    checker = Signatures(None, ring, str(empty))
    repo = init_repo(tmp_path / "repo")
    _stage(repo, _prod(1))
    good = commit_gpg(repo, "v1", alice, fingerprint)
    assert _verdict(checker, repo, 1, good) == "allowed"
    _stage(repo, _prod(2))
    evil = commit_gpg(repo, "v2", eve, other)
    assert _verdict(checker, repo, 2, evil) == \
        f"commit {evil[:7]} signed by a key not in the allowed GPG keys ({other[-16:]})"
