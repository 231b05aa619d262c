"""Open a pull request (GitHub) or merge request (GitLab) for `promote --open-pr`, and set
commit statuses per environment for the controller.

The forge, host, owner and repository come from the git remote URL, so users configure
nothing beyond a token. One POST per pull request, through `requests` with a timeout; every
failure becomes one line a user can act on, and the token never appears in a message: it is
only ever placed in a request header, and API texts are scrubbed of it before they are shown.

Endpoints (request shapes checked against the official docs):
- GitHub "Create a pull request": `POST /repos/{owner}/{repo}/pulls`, body
  `{"title", "head", "base", "body"}`, answer 201 with `html_url`; 422 when validation fails
  (e.g. a pull request already exists, no commits between the branches).
  https://docs.github.com/en/rest/pulls/pulls?apiVersion=2022-11-28#create-a-pull-request
  Headers `Accept: application/vnd.github+json`, `Authorization: Bearer <token>`,
  `X-GitHub-Api-Version: 2022-11-28`, as in that page's code samples; see also
  https://docs.github.com/en/rest/authentication/authenticating-to-the-rest-api and
  https://docs.github.com/en/rest/about-the-rest-api/api-versions. GitHub Enterprise
  Server serves the same API at `https://HOSTNAME/api/v3`.
- GitLab "Create MR": `POST /projects/:id/merge_requests`, `:id` the URL-encoded
  `namespace%2Frepo`, body `{"source_branch", "target_branch", "title", "description"}`,
  answer 201 with `web_url`; 409 when an open MR for the branch exists.
  https://docs.gitlab.com/api/merge_requests/#create-mr, token in `PRIVATE-TOKEN`
  (https://docs.gitlab.com/api/rest/authentication/), paths encoded as in
  https://docs.gitlab.com/api/rest/#namespaced-paths. API root `https://HOST/api/v4`.
- GitHub "Create a commit status": `POST /repos/{owner}/{repo}/statuses/{sha}`, body
  `{"state": "error|failure|pending|success", "target_url", "description", "context"}`,
  answer 201; GitHub keeps the newest status per context, so one context per environment
  (`mlflow-gitops/<environment>`) keeps environments from overwriting each other. The
  description is cut to 140 characters (longer ones are answered 422).
  https://docs.github.com/en/rest/commits/statuses?apiVersion=2022-11-28#create-a-commit-status
- GitLab "Set the pipeline status of a commit": `POST /projects/:id/statuses/:sha`, body
  `{"state": "pending|running|success|failed|canceled", "name", "target_url",
  "description"}` (`name` is the context), answer 201.
  https://docs.gitlab.com/api/commits/#set-the-pipeline-status-of-a-commit"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from mlflow_gitops.adapters.secrets import secret_file
from mlflow_gitops.adapters.uris import scrub
from mlflow_gitops.core.errors import (  # noqa: F401 - ForgeError re-exported
    ConfigError,
    DeliveryError,
    ForgeError,
)
from mlflow_gitops.core.feedback import CommitStatus

GITHUB_API_VERSION = "2022-11-28"
TIMEOUT_SECONDS = 30.0
TOKEN_VARIABLES = {"github": ("GITHUB_TOKEN", "GH_TOKEN"), "gitlab": ("GITLAB_TOKEN",)}
_SCP_LIKE = re.compile(r"^(?:[^@/]+@)?(?P<host>[^:/]+):(?P<path>(?!/).+)$")


@dataclass(frozen=True)
class RemoteRepo:
    """Where a git remote lives: `kind` is github or gitlab; GitLab namespaces may nest."""

    kind: str
    host: str
    owner: str
    repo: str

    @property
    def default_api_url(self) -> str:
        if self.kind == "github":
            return "https://api.github.com" if self.host == "github.com" else (
                f"https://{self.host}/api/v3"
            )
        return f"https://{self.host}/api/v4"

    @property
    def label(self) -> str:
        return "GitHub" if self.kind == "github" else "GitLab"


def parse_remote(url: str, api_url: str | None = None) -> RemoteRepo:
    """https://, ssh:// and scp-like `git@host:owner/repo.git` remotes → RemoteRepo.

    The forge is read from the host name (github… / gitlab…); for other hosts, from an
    `--api-url` ending in /api/v3 (GitHub Enterprise) or /api/v4 (GitLab)."""
    shown = _without_credentials(url)
    scp = _SCP_LIKE.match(url) if "://" not in url else None
    if scp:
        host, path = scp["host"], scp["path"]
    else:
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http", "ssh", "git+ssh", "ssh+git") or not parts.hostname:
            raise ConfigError(f"remote {shown!r} is not a GitHub or GitLab URL: expected "
                              "https://HOST/OWNER/REPO.git or git@HOST:OWNER/REPO.git")
        host = parts.hostname
        if parts.port and parts.scheme in ("https", "http"):
            host = f"{host}:{parts.port}"
        path = parts.path
    segments = [s for s in path.strip("/").removesuffix(".git").split("/") if s]
    kind = _kind(host, api_url)
    if kind is None:
        raise ConfigError(f"cannot tell whether {host} is GitHub or GitLab: pass --api-url "
                          "https://HOST/api/v3 (GitHub Enterprise) or https://HOST/api/v4 (GitLab)")
    if len(segments) < 2 or (kind == "github" and len(segments) != 2):
        raise ConfigError(f"remote {shown!r} does not name a repository: expected "
                          f"{'OWNER/REPO' if kind == 'github' else 'NAMESPACE/REPO'} in its path")
    return RemoteRepo(kind, host, "/".join(segments[:-1]), segments[-1])


def token_from(token_file: str | os.PathLike[str] | None, kind: str) -> str:
    """The API token: the contents of `--token-file`, else GITHUB_TOKEN (or GH_TOKEN) or
    GITLAB_TOKEN from the environment."""
    names = TOKEN_VARIABLES[kind]
    if token_file is not None:
        token = secret_file(token_file, "--token-file", required=False)
        if not token:
            raise ConfigError(f"--token-file {token_file} is empty: put the {kind} token in it")
        return token
    for name in names:
        if os.environ.get(name, "").strip():
            return os.environ[name].strip()
    raise ConfigError(f"no {kind} token to open a pull request: set {names[0]} "
                      "or pass --token-file FILE")


def api_headers(remote: RemoteRepo, token: str) -> dict[str, str]:
    """The documented authentication and version headers of `remote`'s REST API."""
    if remote.kind == "github":
        return {"Accept": "application/vnd.github+json", "Authorization": f"Bearer {token}",
                "X-GitHub-Api-Version": GITHUB_API_VERSION, "User-Agent": "mlflow-gitops"}
    return {"PRIVATE-TOKEN": token, "User-Agent": "mlflow-gitops"}


def repository_url(remote: RemoteRepo, api: str) -> str:
    """The API URL of the repository (GitHub) or project (GitLab) itself."""
    if remote.kind == "github":
        return f"{api}/repos/{quote(remote.owner, safe='')}/{quote(remote.repo, safe='')}"
    return f"{api}/projects/{quote(f'{remote.owner}/{remote.repo}', safe='')}"


def send(remote: RemoteRepo, api: str, method: str, url: str, token: str,
         payload: dict[str, Any] | None = None, params: dict[str, str] | None = None,
         timeout: float = TIMEOUT_SECONDS) -> tuple[int, Any]:
    """One API call with a timeout and no redirects: (status, decoded JSON or None). A
    network failure is a ForgeError naming the API root, never the token."""
    try:
        response = requests.request(method, url, json=payload, params=params,
                                    headers=api_headers(remote, token),
                                    timeout=timeout, allow_redirects=False)
    except requests.Timeout as exc:
        raise ForgeError(f"the {remote.label} API at {api} did not answer within "
                         f"{timeout:.0f}s; try again or check --api-url") from exc
    except requests.RequestException as exc:
        raise ForgeError(f"cannot reach the {remote.label} API at {api} "
                         f"({type(exc).__name__}); check the network and --api-url") from exc
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, None


def open_pull_request(remote_url: str, head_branch: str, base_branch: str, title: str,
                      body: str, token: str, api_url: str | None = None) -> str:
    """Open a pull/merge request of `head_branch` into `base_branch`; return its web URL."""
    remote = parse_remote(remote_url, api_url)
    api = (api_url or remote.default_api_url).rstrip("/")
    if remote.kind == "github":
        url = f"{repository_url(remote, api)}/pulls"
        payload = {"title": title, "head": head_branch, "base": base_branch, "body": body}
        url_field = "html_url"
    else:
        url = f"{repository_url(remote, api)}/merge_requests"
        payload = {"source_branch": head_branch, "target_branch": base_branch,
                   "title": title, "description": body}
        url_field = "web_url"
    status, decoded = send(remote, api, "POST", url, token, payload)
    answer = decoded if isinstance(decoded, dict) else {}
    if status in (200, 201) and isinstance(answer.get(url_field), str):
        return str(answer[url_field])
    raise ForgeError(failure_message(remote, api, status, answer, token))


def failure_message(remote: RemoteRepo, api: str, status: int, answer: dict[str, Any],
                    token: str) -> str:
    """One token-free line a user can act on, for a pull/merge request call that failed."""
    what = "pull request" if remote.kind == "github" else "merge request"
    where = f"{remote.owner}/{remote.repo}"
    said = scrub(_api_message(answer), [token])
    said_part = f": {said}" if said else ""
    variable = TOKEN_VARIABLES[remote.kind][0]
    if status == 401:
        return (f"{remote.label} rejected the token (401 Unauthorized): it is missing, expired "
                f"or wrong; set {variable} or pass --token-file FILE with a valid token")
    if status == 403:
        return (f"{remote.label} refused to open a {what} on {where} (403 Forbidden{said_part}); "
                f"the token in {variable} or --token-file needs write access to the repository")
    if status == 404:
        return (f"{remote.label} has no repository {where} at {api} (404), or the token cannot "
                "see it; check the git remote, --api-url and the token's access")
    if status in (409, 422):
        return f"{remote.label} could not open the {what} on {where} ({status}){said_part}"
    if 300 <= status < 400:
        return (f"the {remote.label} API at {api} answered with a redirect ({status}); "
                "pass the final API root as --api-url")
    if status in (200, 201):
        return f"{remote.label} opened the {what} but its answer has no URL (status {status})"
    return f"the {remote.label} API failed to open the {what} on {where} ({status}){said_part}"


def answer_json(response: requests.Response) -> dict[str, Any]:
    """The JSON object a forge answered, or {} when it is not one."""
    try:
        answer = response.json()
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def _api_message(answer: dict[str, Any]) -> str:
    """GitHub: `message` plus each `errors[].message`; GitLab: `message` (a string, a list or
    a field → messages mapping) or `error`."""
    parts: list[str] = []
    message = answer.get("message", answer.get("error"))
    if isinstance(message, str):
        parts.append(message)
    elif isinstance(message, list):
        parts.extend(str(m) for m in message)
    elif isinstance(message, dict):
        parts.extend(f"{field} {' '.join(map(str, texts)) if isinstance(texts, list) else texts}"
                     for field, texts in message.items())
    for error in answer.get("errors") or []:
        if isinstance(error, dict):
            detail = error.get("message") or " ".join(
                str(error[k]) for k in ("resource", "field", "code") if error.get(k)
            )
            parts.append(str(detail))
        elif isinstance(error, str):
            parts.append(error)
    text = "; ".join(p.rstrip(".") for p in parts if p and p.strip())
    text = " ".join(text.split())
    return text[:300] + "…" if len(text) > 300 else text


def _kind(host: str, api_url: str | None) -> str | None:
    """An --api-url ending in /api/v3 or /api/v4 decides; else the host name does."""
    path = urlsplit(api_url).path.rstrip("/") if api_url else ""
    by_api = {"/api/v3": "github", "/api/v4": "gitlab"}.get(path[-7:])
    name = host.split(":")[0].lower()
    by_host = "github" if "github" in name else "gitlab" if "gitlab" in name else None
    return by_api or by_host


def _without_credentials(url: str) -> str:
    """The remote URL safe to show: `https://user:token@host/...` loses its user info."""
    return re.sub(r"^(\w[\w+.-]*://)[^@/]*@", r"\1", url)


# -- commit statuses ------------------------------------------------------------

GITLAB_STATES = {"pending": "pending", "success": "success", "failure": "failed"}
DESCRIPTION_LIMIT = 140


@dataclass(frozen=True)
class StatusTarget:
    """Where commit statuses go: the repository, its API root, the token and an optional
    link (`{environment}` and `{sha}` are filled in) to the controller's page."""

    remote: RemoteRepo
    api_url: str
    token: str = field(repr=False)
    target_url: str | None = None


def status_request(target: StatusTarget, status: CommitStatus
                   ) -> tuple[str, dict[str, str], dict[str, str]]:
    """(url, headers, JSON body) of the documented create-status call for `status`."""
    remote, api = target.remote, target.api_url.rstrip("/")
    description = status.description
    if len(description) > DESCRIPTION_LIMIT:
        description = description[:DESCRIPTION_LIMIT - 1] + "…"
    body = {"state": status.state, "description": description}
    headers = {"User-Agent": "mlflow-gitops"}
    if remote.kind == "github":
        url = (f"{api}/repos/{quote(remote.owner, safe='')}/{quote(remote.repo, safe='')}"
               f"/statuses/{quote(status.sha, safe='')}")
        headers.update({"Accept": "application/vnd.github+json",
                        "Authorization": f"Bearer {target.token}",
                        "X-GitHub-Api-Version": GITHUB_API_VERSION})
        body["context"] = status.context
    else:
        project = quote(f"{remote.owner}/{remote.repo}", safe="")
        url = f"{api}/projects/{project}/statuses/{quote(status.sha, safe='')}"
        headers["PRIVATE-TOKEN"] = target.token
        body["state"] = GITLAB_STATES[status.state]
        body["name"] = status.context
    if target.target_url:
        body["target_url"] = target.target_url.format(environment=status.environment,
                                                      sha=status.sha)
    return url, headers, body


def post_commit_status(target: StatusTarget, status: CommitStatus) -> None:
    """Set one commit status; DeliveryError (transient or not, token-free) when it fails."""
    url, headers, body = status_request(target, status)
    label = target.remote.label
    try:
        response = requests.post(url, json=body, headers=headers, timeout=TIMEOUT_SECONDS,
                                 allow_redirects=False)
    except requests.RequestException as exc:
        raise DeliveryError(f"cannot reach the {label} API at {target.api_url} "
                            f"({type(exc).__name__})") from exc
    if response.status_code in (200, 201):
        return
    said = scrub(_api_message(answer_json(response)), [target.token])
    code = response.status_code
    raise DeliveryError(
        f"{label} refused the commit status {status.context}={status.state} on "
        f"{status.sha[:12]} ({code}{': ' + said if said else ''})"
        + ("; the token needs permission to set commit statuses" if code in (401, 403) else ""),
        transient=code == 429 or code >= 500)
