"""Trust at apply, the forge side: approvals read from GitHub and GitLab stand-ins that
answer as the docs say and record every request; caching that never reuses an approval, and
a forge that is down, redirects or refuses."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow_gitops.adapters.forge import RemoteRepo
from mlflow_gitops.adapters.forge_target import ForgeTarget
from mlflow_gitops.adapters.trust import TrustReader
from mlflow_gitops.core.model import Environment, Target
from mlflow_gitops.core.trust import TrustRules
from mlflow_gitops.policy.trust import judge

from tests.support.envfiles import HEADER
from tests.support.fake_forge import TOKEN, FakeForge, forge  # noqa: F401 - fixture
from tests.support.gitrepos import commit_all, git, init_repo, write_files

FILE = "environments/production.yaml"
RULES = TrustRules(frozenset({"production"}), reviews=2)
ENV = Environment("production", FILE, Target("stage", "Production"))


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _target(server: FakeForge, kind: str) -> ForgeTarget:
    host = server.url.split("://", 1)[1]
    api = f"{server.url}/api/{'v3' if kind == 'github' else 'v4'}"
    return ForgeTarget(RemoteRepo(kind, host, "acme", "envs"), api, TOKEN)


def _repo(tmp_path: Path) -> tuple[Path, str, str]:
    """A main branch where a feature branch's commit set fraud to v2 and was merged."""
    repo = init_repo(tmp_path / "repo", {FILE: HEADER + "target:\n  stage: Production\n"
                                         "models:\n  fraud: 1\n"})
    git(repo, "checkout", "-q", "-b", "feature")
    write_files(repo, {FILE: HEADER + "target:\n  stage: Production\nmodels:\n  fraud: 2\n"})
    change = commit_all(repo, "fraud v2")
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--no-ff", "-m", "Merge pull request #7", "feature")
    return repo, change, git(repo, "rev-parse", "HEAD")


def _message(reader: TrustReader, merge: str) -> str:
    verdict = judge(RULES, reader.entry_trust(ENV, "fraud", 2, merge))
    return "allowed" if verdict.allowed else verdict.message


@pytest.mark.parametrize("kind", ["github", "gitlab"])
def test_approvals_by_others_count_the_authors_own_does_not(
        tmp_path: Path, forge: FakeForge, kind: str) -> None:  # noqa: F811 - fixture
    """Two approvals by others pass; the author's own approval is named, not counted; every
    request carries the documented auth header and goes to the documented path."""
    repo, change, merge = _repo(tmp_path)
    forge.merged_pull(7, [change], "ada", merge)
    forge.review(7, "ada", "APPROVED")
    forge.review(7, "bob", "APPROVED")
    reader = TrustReader(repo, "main", RULES, None, _target(forge, kind), recheck=60)
    assert _message(reader, merge) == \
        "approved by 1 of 2 reviewers (the author's own approval does not count)"
    forge.review(7, "cyd", "APPROVED")
    reader = TrustReader(repo, "main", RULES, None, _target(forge, kind), recheck=60)
    assert _message(reader, merge) == "allowed"
    paths = [r["path"] for r in forge.trust_requests()]
    if kind == "github":
        assert paths[:2] == [f"/api/v3/repos/acme/envs/commits/{change}/pulls",
                             "/api/v3/repos/acme/envs/pulls/7/reviews"]
        assert all(r["headers"]["Authorization"] == f"Bearer {TOKEN}" and
                   r["headers"]["X-GitHub-Api-Version"] == "2022-11-28"
                   for r in forge.trust_requests())
    else:
        assert paths[:2] == [
            f"/api/v4/projects/acme%2Fenvs/repository/commits/{change}/merge_requests",
            "/api/v4/projects/acme%2Fenvs/merge_requests/7/approvals"]
        assert all(r["headers"]["PRIVATE-TOKEN"] == TOKEN for r in forge.trust_requests())


def test_a_direct_push_has_no_pull_request(tmp_path: Path, forge: FakeForge  # noqa: F811
                                           ) -> None:
    """A commit no merged pull request contains is refused as pushed without one."""
    repo, _, _ = _repo(tmp_path)
    write_files(repo, {FILE: HEADER + "target:\n  stage: Production\nmodels:\n  fraud: 3\n"})
    pushed = commit_all(repo, "straight to main")
    reader = TrustReader(repo, "main", RULES, None, _target(forge, "github"))
    verdict = judge(RULES, reader.entry_trust(ENV, "fraud", 3, pushed))
    assert verdict.message == "pushed without a pull request"


def test_a_dismissed_review_is_seen_at_once_and_refusals_are_rechecked(
        tmp_path: Path, forge: FakeForge) -> None:  # noqa: F811 - fixture
    """An approval is never served from cache (a dismissal after the merge stops the change
    on the next read); a refusal is kept `recheck` seconds, then asked again."""
    repo, change, merge = _repo(tmp_path)
    forge.merged_pull(7, [change], "ada", merge)
    forge.review(7, "bob", "APPROVED")
    forge.review(7, "cyd", "APPROVED")
    clock = Clock()
    reader = TrustReader(repo, "main", RULES, None, _target(forge, "github"), recheck=60,
                         clock=clock)
    assert _message(reader, merge) == "allowed"
    forge.dismiss(7, "cyd")
    assert _message(reader, merge) == "approved by 1 of 2 reviewers"
    asked = len(forge.trust_requests())
    forge.review(7, "dee", "APPROVED")
    clock.now += 30
    assert _message(reader, merge) == "approved by 1 of 2 reviewers"  # cached refusal
    assert len(forge.trust_requests()) == asked
    clock.now += 31
    assert _message(reader, merge) == "allowed"


def test_a_forge_that_is_down_makes_the_change_wait_with_backoff(
        tmp_path: Path, forge: FakeForge) -> None:  # noqa: F811 - fixture
    """No answer: the change waits, asked again after 5 s, then 10 s; never allowed."""
    repo, change, merge = _repo(tmp_path)
    forge.merged_pull(7, [change], "ada", merge)
    forge.dropping = True
    clock = Clock()
    reader = TrustReader(repo, "main", RULES, None, _target(forge, "github"), clock=clock)
    first = judge(RULES, reader.entry_trust(ENV, "fraud", 2, merge))
    assert not first.allowed and first.waiting_until == clock.now + 5
    assert first.message.startswith("not verified yet: cannot read approvals from GitHub")
    asked = len(forge.trust_requests())
    clock.now += 4
    assert judge(RULES, reader.entry_trust(ENV, "fraud", 2, merge)).waiting_until == \
        clock.now + 1
    assert len(forge.trust_requests()) == asked  # no call inside the backoff
    clock.now += 1
    assert judge(RULES, reader.entry_trust(ENV, "fraud", 2, merge)).waiting_until == \
        clock.now + 10


def test_the_token_never_follows_a_redirect(tmp_path: Path, forge: FakeForge  # noqa: F811
                                            ) -> None:
    """A forge answering with a redirect to another host is refused; the other host (a
    second stand-in) receives nothing, so the token never leaves the configured forge."""
    other = FakeForge()
    import threading

    threading.Thread(target=other.serve_forever, args=(0.05,), daemon=True).start()
    try:
        repo, change, merge = _repo(tmp_path)
        forge.redirect_to = other.url
        reader = TrustReader(repo, "main", RULES, None, _target(forge, "github"))
        verdict = judge(RULES, reader.entry_trust(ENV, "fraud", 2, merge))
        assert not verdict.allowed and verdict.waiting_until is None
        assert "answered 302" in verdict.message and TOKEN not in verdict.message
        assert other.requests == []
    finally:
        other.shutdown()
        other.server_close()
