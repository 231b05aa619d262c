"""forge: pull/merge requests opened against a local HTTP server that plays GitHub and GitLab.

The server checks each request the way the official docs specify it and answers with the
documented shapes; it keeps the requests it has opened, so a second identical request meets
the real conflict answer (GitHub 422, GitLab 409) rather than a scripted one.

- GitHub "Create a pull request":
  https://docs.github.com/en/rest/pulls/pulls?apiVersion=2022-11-28#create-a-pull-request
- GitLab "Create MR": https://docs.gitlab.com/api/merge_requests/#create-mr
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mlflow_gitops.adapters.forge import (
    ForgeError,
    RemoteRepo,
    open_pull_request,
    parse_remote,
    token_from,
)
from mlflow_gitops.adapters.pulls import pull_requests, update_pull_request
from mlflow_gitops.core.errors import ConfigError

from tests.support.fake_forge import TOKEN, FakeForge
from tests.support.servers import free_port

ACME = RemoteRepo("github", "github.com", "acme", "ml-envs")

def _github_pr(forge: FakeForge, token: str = TOKEN, head: str = "promote/fraud-v4") -> str:
    return open_pull_request("git@github.com:acme/ml-envs.git", head, "main",
                             "Promote fraud-detector v4 to production", "## Plan\n1 to change",
                             token, api_url=f"{forge.url}/api/v3")


def _gitlab_mr(forge: FakeForge, token: str = TOKEN) -> str:
    return open_pull_request("https://gitlab.example.com/ml/platform/envs.git",
                             "promote/churn-v8", "main", "Promote churn v8 to staging",
                             "## Plan", token, api_url=f"{forge.url}/api/v4")


def _one_clear_line(message: str) -> None:
    assert "\n" not in message and message.strip() == message and message
    assert TOKEN not in message


def test_github_pull_request_is_created_as_documented(forge: FakeForge) -> None:
    """POST /repos/{owner}/{repo}/pulls with the documented headers and body; returns html_url."""
    assert _github_pr(forge) == "https://github.com/acme/ml-envs/pull/1"
    [request] = forge.requests
    assert request["method"] == "POST"
    assert request["path"] == "/api/v3/repos/acme/ml-envs/pulls"
    assert request["headers"]["Accept"] == "application/vnd.github+json"
    assert request["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert request["headers"]["X-GitHub-Api-Version"] == "2022-11-28"
    assert request["headers"]["Content-Type"] == "application/json"
    assert request["body"] == {"title": "Promote fraud-detector v4 to production",
                               "head": "promote/fraud-v4", "base": "main",
                               "body": "## Plan\n1 to change"}


def test_gitlab_merge_request_is_created_as_documented(forge: FakeForge) -> None:
    """POST /projects/:id/merge_requests, :id the %2F-encoded path, PRIVATE-TOKEN; web_url."""
    assert _gitlab_mr(forge) == "https://gitlab.example.com/ml/platform/envs/-/merge_requests/1"
    [request] = forge.requests
    assert request["path"] == "/api/v4/projects/ml%2Fplatform%2Fenvs/merge_requests"
    assert request["headers"]["PRIVATE-TOKEN"] == TOKEN
    assert "Authorization" not in request["headers"]
    assert request["body"] == {"source_branch": "promote/churn-v8", "target_branch": "main",
                               "title": "Promote churn v8 to staging", "description": "## Plan"}


@pytest.mark.parametrize("opener", [_github_pr, _gitlab_mr], ids=["github", "gitlab"])
def test_bad_token_is_one_line_naming_the_variable(forge: FakeForge, opener: Any) -> None:
    """A 401 says the token is bad and which variable or file to set, without the token."""
    wrong = "glpat-wrong-token-value"
    with pytest.raises(ForgeError) as caught:
        opener(forge, token=wrong)
    message = str(caught.value)
    _one_clear_line(message)
    assert "401" in message and "--token-file" in message and wrong not in message
    assert ("GITHUB_TOKEN" if opener is _github_pr else "GITLAB_TOKEN") in message


def test_github_422_existing_pull_request_gives_the_apis_reason(forge: FakeForge) -> None:
    """A second PR for the same branches meets GitHub's 422; the line carries its message."""
    _github_pr(forge)
    with pytest.raises(ForgeError) as caught:
        _github_pr(forge)
    message = str(caught.value)
    _one_clear_line(message)
    assert message == ("GitHub could not open the pull request on acme/ml-envs (422): "
                       "Validation Failed; A pull request already exists for "
                       "acme:promote/fraud-v4")


def test_gitlab_409_existing_merge_request_gives_the_apis_reason(forge: FakeForge) -> None:
    """A second MR from the same branch meets GitLab's 409; the line carries its message."""
    _gitlab_mr(forge)
    with pytest.raises(ForgeError) as caught:
        _gitlab_mr(forge)
    message = str(caught.value)
    _one_clear_line(message)
    assert message == ("GitLab could not open the merge request on ml/platform/envs (409): "
                       "Another open merge request already exists for this source branch: !1")


def test_api_text_echoing_the_token_is_scrubbed(forge: FakeForge) -> None:
    """Even an API message that quotes the token is shown without it."""
    forge.forced = (403, {"message": f"token {TOKEN} lacks scope repo\nsee docs"})
    with pytest.raises(ForgeError) as caught:
        _github_pr(forge)
    message = str(caught.value)
    _one_clear_line(message)
    assert "403" in message and "token *** lacks scope repo see docs" in message


def test_unreachable_api_is_one_clear_line() -> None:
    """Connection refused names the API root and what to check, never the token."""
    closed = f"http://127.0.0.1:{free_port()}/api/v3"
    with pytest.raises(ForgeError) as caught:
        open_pull_request("https://github.com/acme/ml-envs", "b", "main", "t", "", TOKEN,
                          api_url=closed)
    message = str(caught.value)
    _one_clear_line(message)
    assert message.startswith(f"cannot reach the GitHub API at {closed}")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://github.com/acme/ml-envs.git", ACME),
        ("https://x-access-token:abc@github.com/acme/ml-envs/", ACME),
        ("git@github.com:acme/ml-envs.git", ACME),
        ("ssh://git@github.com/acme/ml-envs", ACME),
        ("ssh://git@gitlab.example.com:2222/ml/platform/envs.git",
         RemoteRepo("gitlab", "gitlab.example.com", "ml/platform", "envs")),
        ("https://gitlab.com/group/envs.git", RemoteRepo("gitlab", "gitlab.com", "group", "envs")),
        ("https://github.acme.internal:8443/ml/envs.git",
         RemoteRepo("github", "github.acme.internal:8443", "ml", "envs")),
    ],
)
def test_remote_urls_are_parsed(url: str, expected: RemoteRepo) -> None:
    """https, ssh:// and scp-like remotes give the forge, host, owner/namespace and repo."""
    assert parse_remote(url) == expected


def test_default_api_roots() -> None:
    """github.com → api.github.com; Enterprise → /api/v3; GitLab → /api/v4."""
    assert parse_remote("git@github.com:a/b.git").default_api_url == "https://api.github.com"
    assert parse_remote("https://github.acme.io/a/b").default_api_url == (
        "https://github.acme.io/api/v3")
    assert parse_remote("git@gitlab.com:a/b.git").default_api_url == "https://gitlab.com/api/v4"


def test_unknown_host_needs_api_url() -> None:
    """A host named neither github nor gitlab is told apart by --api-url's /api/v3 or /api/v4."""
    with pytest.raises(ConfigError, match="pass --api-url"):
        parse_remote("git@code.acme.io:ml/envs.git")
    assert parse_remote("git@code.acme.io:ml/envs.git", "https://code.acme.io/api/v4").kind == (
        "gitlab")
    assert parse_remote("git@code.acme.io:ml/envs.git", "https://code.acme.io/api/v3").kind == (
        "github")


def test_not_a_forge_remote_is_refused_without_credentials() -> None:
    """A local path or a URL without owner/repo is a ConfigError that hides user info."""
    with pytest.raises(ConfigError, match="not a GitHub or GitLab URL"):
        parse_remote("/srv/git/envs.git")
    with pytest.raises(ConfigError) as caught:
        parse_remote("https://user:hunter2@github.com/only-owner")
    assert "hunter2" not in str(caught.value) and "OWNER/REPO" in str(caught.value)


def test_token_from_file_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--token-file wins (trimmed); else GITHUB_TOKEN / GITLAB_TOKEN; else a clear error."""
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    monkeypatch.delenv("GH_TOKEN", raising=False)
    monkeypatch.delenv("GITLAB_TOKEN", raising=False)
    token_file = tmp_path / "token"
    token_file.write_text(f"{TOKEN}\n")
    assert token_from(token_file, "github") == TOKEN
    with pytest.raises(ConfigError, match="set GITHUB_TOKEN or pass --token-file"):
        token_from(None, "github")
    monkeypatch.setenv("GITLAB_TOKEN", "glpat-abc")
    assert token_from(None, "gitlab") == "glpat-abc"
    with pytest.raises(ConfigError, match="cannot read --token-file"):
        token_from(tmp_path / "missing", "gitlab")
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        token_from(tmp_path / "empty", "gitlab")


# -- proposals: find a branch's pull requests in any state, edit the open one ---------------

def test_pull_requests_of_a_branch_in_every_state_and_an_edit_in_place(forge: Any) -> None:
    """A branch's PRs are listed open, closed and merged; the open one is edited in place."""
    remote = "https://github.example.com/acme/models.git"
    api = f"{forge.url}/api/v3"
    first = open_pull_request(remote, "propose/staging/fraud", "main", "v3", "b3", TOKEN, api)
    forge.close(1)
    open_pull_request(remote, "propose/staging/fraud", "main", "v4", "b4", TOKEN, api)
    found = pull_requests(remote, "propose/staging/fraud", TOKEN, api)
    assert [(p.number, p.state, p.title) for p in found] == [(2, "open", "v4"),
                                                             (1, "closed", "v3")]
    assert found[1].url == first
    url = update_pull_request(remote, 2, "v5", "b5", TOKEN, api)
    assert url.endswith("/pull/2")
    assert [(p.title, p.body) for p in pull_requests(remote, "propose/staging/fraud", TOKEN,
                                                      api)][0] == ("v5", "b5")
    listed = [r for r in forge.requests if r["method"] == "GET"][-1]
    assert listed["params"] == {"state": "all", "head": "acme:propose/staging/fraud",
                                "per_page": "100"}


def test_gitlab_merge_requests_are_listed_and_updated(forge: Any) -> None:
    """GitLab: merged MRs read as merged, and an update is a PUT of title and description."""
    remote = "https://gitlab.example.com/group/sub/models.git"
    api = f"{forge.url}/api/v4"
    open_pull_request(remote, "propose/prod/churn", "main", "v7", "b7", TOKEN, api)
    forge.close(1, merged=True)
    open_pull_request(remote, "propose/prod/churn", "main", "v8", "b8", TOKEN, api)
    found = pull_requests(remote, "propose/prod/churn", TOKEN, api)
    assert [(p.number, p.state) for p in found] == [(2, "open"), (1, "merged")]
    update_pull_request(remote, 2, "v9", "b9", TOKEN, api)
    put = [r for r in forge.requests if r["method"] == "PUT"][-1]
    assert put["path"] == "/api/v4/projects/group%2Fsub%2Fmodels/merge_requests/2"
    assert put["body"] == {"title": "v9", "description": "b9"}


def test_a_bad_token_listing_pull_requests_is_one_line_without_the_token(forge: Any) -> None:
    """A 401 while listing is a ForgeError that names the fix and never the token."""
    with pytest.raises(ForgeError) as caught:
        pull_requests("https://github.example.com/acme/models.git", "b", "wrong-token",
                      f"{forge.url}/api/v3")
    assert "401" in str(caught.value) and "wrong-token" not in str(caught.value)
