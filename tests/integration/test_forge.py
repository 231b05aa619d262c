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
