"""The life of a proposal's pull request at the forge (`propose`): find the pull requests
of a branch in any state, and edit the open one in place, so a newer candidate updates the
same pull request instead of opening a second, and one closed without merging is remembered.

Endpoints (request shapes checked against the official docs):
- GitHub "List pull requests": `GET /repos/{owner}/{repo}/pulls?state=all&head=OWNER:BRANCH`;
  each item has `number`, `state` (open/closed), `merged_at` (null unless merged), `title`,
  `body`, `html_url`.
  https://docs.github.com/en/rest/pulls/pulls?apiVersion=2022-11-28#list-pull-requests
- GitHub "Update a pull request": `PATCH /repos/{owner}/{repo}/pulls/{pull_number}`, body
  `{"title", "body"}`, answer 200.
  https://docs.github.com/en/rest/pulls/pulls?apiVersion=2022-11-28#update-a-pull-request
- GitLab "List project merge requests":
  `GET /projects/:id/merge_requests?source_branch=BRANCH&state=all`; each item has `iid`,
  `state` (opened/closed/merged/locked), `title`, `description`, `web_url`.
  https://docs.gitlab.com/api/merge_requests/#list-project-merge-requests
- GitLab "Update MR": `PUT /projects/:id/merge_requests/:merge_request_iid`, body
  `{"title", "description"}`, answer 200. https://docs.gitlab.com/api/merge_requests/#update-mr
Authentication and errors as in mlflow_gitops.adapters.forge."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from mlflow_gitops.adapters.forge import (
    failure_message,
    parse_remote,
    repository_url,
    send,
)
from mlflow_gitops.core.errors import ForgeError

State = Literal["open", "closed", "merged"]


@dataclass(frozen=True)
class PullRequest:
    number: int  # GitHub's number, GitLab's iid
    state: State
    title: str
    body: str
    url: str


def pull_requests(remote_url: str, head_branch: str, token: str, api_url: str | None = None
                  ) -> list[PullRequest]:
    """Every pull/merge request whose head is `head_branch`, newest first, in any state."""
    remote = parse_remote(remote_url, api_url)
    api = (api_url or remote.default_api_url).rstrip("/")
    if remote.kind == "github":
        url = f"{repository_url(remote, api)}/pulls"
        params = {"state": "all", "head": f"{remote.owner}:{head_branch}", "per_page": "100"}
    else:
        url = f"{repository_url(remote, api)}/merge_requests"
        params = {"state": "all", "source_branch": head_branch, "per_page": "100"}
    status, answer = send(remote, api, "GET", url, token, params=params)
    if status != 200 or not isinstance(answer, list):
        raise ForgeError(failure_message(remote, api, status, answer if isinstance(
            answer, dict) else {}, token))
    found = [_pull(item, remote.kind) for item in answer if isinstance(item, dict)]
    return sorted((p for p in found if p is not None), key=lambda p: -p.number)


def update_pull_request(remote_url: str, number: int, title: str, body: str, token: str,
                        api_url: str | None = None) -> str:
    """Replace the title and body of an open pull/merge request; its web URL."""
    remote = parse_remote(remote_url, api_url)
    api = (api_url or remote.default_api_url).rstrip("/")
    if remote.kind == "github":
        method, url = "PATCH", f"{repository_url(remote, api)}/pulls/{number}"
        payload, url_field = {"title": title, "body": body}, "html_url"
    else:
        method, url = "PUT", f"{repository_url(remote, api)}/merge_requests/{number}"
        payload, url_field = {"title": title, "description": body}, "web_url"
    status, answer = send(remote, api, method, url, token, payload)
    data = answer if isinstance(answer, dict) else {}
    if status == 200 and isinstance(data.get(url_field), str):
        return str(data[url_field])
    raise ForgeError(failure_message(remote, api, status, data, token))


def _pull(item: dict[str, Any], kind: str) -> PullRequest | None:
    try:
        if kind == "github":
            state: State = ("merged" if item.get("merged_at") else
                            "open" if item["state"] == "open" else "closed")
            return PullRequest(int(item["number"]), state, str(item.get("title") or ""),
                               str(item.get("body") or ""), str(item.get("html_url") or ""))
        gitlab = {"opened": "open", "merged": "merged"}.get(str(item["state"]), "closed")
        return PullRequest(int(item["iid"]), gitlab,  # type: ignore[arg-type]
                           str(item.get("title") or ""), str(item.get("description") or ""),
                           str(item.get("web_url") or ""))
    except (KeyError, TypeError, ValueError):
        return None  # not a pull request as documented: ignore it rather than guess
