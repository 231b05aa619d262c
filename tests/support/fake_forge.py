"""A local HTTP server that plays the GitHub and GitLab create-pull-request APIs, checking
each request the way the official docs specify and answering with the documented shapes. It
keeps what it opened, so a second identical request meets the real conflict answer (GitHub
422, GitLab 409) rather than a scripted one.

- GitHub "Create a pull request":
  https://docs.github.com/en/rest/pulls/pulls?apiVersion=2022-11-28#create-a-pull-request
- GitLab "Create MR": https://docs.gitlab.com/api/merge_requests/#create-mr

For proposals it lists and edits them too (a conflict is answered only while an open one
exists for the same branches, as the real APIs do); `close()` plays a person closing one:
- GitHub "List pull requests" / "Update a pull request":
  https://docs.github.com/en/rest/pulls/pulls?apiVersion=2022-11-28#list-pull-requests
  https://docs.github.com/en/rest/pulls/pulls?apiVersion=2022-11-28#update-a-pull-request
- GitLab "List project merge requests" / "Update MR":
  https://docs.gitlab.com/api/merge_requests/#list-project-merge-requests
  https://docs.gitlab.com/api/merge_requests/#update-mr

It also plays the commit status APIs and two notification receivers:
- GitHub "Create a commit status", `POST /repos/{owner}/{repo}/statuses/{sha}`, body
  `state` (error|failure|pending|success, required), `target_url`, `description`, `context`;
  201 with the status object:
  https://docs.github.com/en/rest/commits/statuses?apiVersion=2022-11-28#create-a-commit-status
- GitLab "Set the pipeline status of a commit", `POST /projects/:id/statuses/:sha`, `state`
  (pending|running|success|failed|canceled, required), `name`/`context`, `target_url`,
  `description`; 201: https://docs.gitlab.com/api/commits/#set-the-pipeline-status-of-a-commit
- A Slack incoming webhook (`POST /services/T…/B…/…`, JSON with `text`, answer 200 `ok`;
  a body without `text` is 400 `invalid_payload`): https://api.slack.com/messaging/webhooks
- A plain JSON receiver at `/hooks/…` that records what arrived.
`fail[path] = n` answers the next n requests to `path` with 500, to test retries.

For trust at apply it answers who approved the pull request that merged a commit, from
pull requests a test declares with `merged_pull()` and reviews it adds with `review()`:
- GitHub "List pull requests associated with a commit",
  `GET /repos/{owner}/{repo}/commits/{commit_sha}/pulls` (pull request objects with
  `number`, `state`, `merged_at`, `user.login`, `base.ref`, `merge_commit_sha`):
  https://docs.github.com/en/rest/commits/commits?apiVersion=2022-11-28#list-pull-requests-associated-with-a-commit
- GitHub "List reviews for a pull request", `GET /repos/{owner}/{repo}/pulls/{n}/reviews`
  (chronological; `user.login`, `state`, `submitted_at`; `per_page` up to 100, `page`):
  https://docs.github.com/en/rest/pulls/reviews?apiVersion=2022-11-28#list-reviews-for-a-pull-request
- GitLab "List merge requests associated with a commit",
  `GET /projects/:id/repository/commits/:sha/merge_requests` (`iid`, `state`,
  `target_branch`, `author.username`, `merge_commit_sha`):
  https://docs.gitlab.com/api/commits/#list-merge-requests-associated-with-a-commit
- GitLab merge request approvals, `GET /projects/:id/merge_requests/:iid/approvals`
  (`approved_by: [{"user": {"username"}}]`, who approves now):
  https://docs.gitlab.com/api/merge_request_approvals/
`dropping = True` closes every connection without an answer (a forge that is down).
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.support.servers import free_port

TOKEN = "ghp_s3cr3t-token-value-0123456789"
GITHUB_PULLS = re.compile(r"^/api/v3/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/pulls$")
GITLAB_MRS = re.compile(r"^/api/v4/projects/(?P<project>[^/]+)/merge_requests$")
GITHUB_PULL = re.compile(r"^/api/v3/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/pulls/(?P<number>\d+)$")
GITLAB_MR = re.compile(r"^/api/v4/projects/(?P<project>[^/]+)/merge_requests/(?P<iid>\d+)$")
GITHUB_STATUSES = re.compile(
    r"^/api/v3/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/statuses/(?P<sha>[0-9a-f]{40})$")
GITHUB_COMMIT_PULLS = re.compile(
    r"^/api/v3/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/commits/(?P<sha>[0-9a-f]{40})/pulls$")
GITHUB_REVIEWS = re.compile(
    r"^/api/v3/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/pulls/(?P<number>\d+)/reviews$")
GITLAB_COMMIT_MRS = re.compile(
    r"^/api/v4/projects/(?P<project>[^/]+)/repository/commits/(?P<sha>[0-9a-f]{40})"
    r"/merge_requests$")
GITLAB_APPROVALS = re.compile(
    r"^/api/v4/projects/(?P<project>[^/]+)/merge_requests/(?P<iid>\d+)/approvals$")
GITLAB_STATUSES = re.compile(
    r"^/api/v4/projects/(?P<project>[^/]+)/statuses/(?P<sha>[0-9a-f]{40})$")
SLACK = re.compile(r"^/services/T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]+$")
GITHUB_STATES = {"error", "failure", "pending", "success"}
GITLAB_STATES = {"pending", "running", "success", "failed", "canceled"}


class FakeForge(ThreadingHTTPServer):
    """GitHub (`/api/v3`) and GitLab (`/api/v4`) create endpoints, with their real checks."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", free_port()), _Handler)
        self.requests: list[dict[str, Any]] = []
        self.opened: list[tuple[str, str, str]] = []  # (project, head, base)
        self.forced: tuple[int, dict[str, Any]] | None = None  # answer every request so
        self.statuses: list[dict[str, Any]] = []  # accepted commit statuses, in order
        self.received: list[dict[str, Any]] = []  # what reached the receivers, raw body too
        self.fail: dict[str, int] = {}  # path → how many more requests answer 500
        self.delay = 0.0  # seconds every /api/ request waits before it is answered (a slow forge)
        self.lock = threading.Lock()
        self.pulls: list[dict[str, Any]] = []  # every PR/MR opened, as the list APIs show it
        self.merged: dict[int, dict[str, Any]] = {}  # merged pull requests, for approvals
        self.dropping = False  # close every connection unanswered (the forge is down)
        self.redirect_to: str | None = None  # answer every GET with a 302 to this root

    def merged_pull(self, number: int, commits: list[str], author: str, merge: str,
                    base: str = "main") -> None:
        """A pull request `number` by `author` that brought `commits` into `base` as `merge`."""
        with self.lock:
            self.merged[number] = {"number": number, "commits": set(commits) | {merge},
                                   "author": author, "merge": merge, "base": base,
                                   "reviews": []}

    def review(self, number: int, login: str, state: str) -> None:
        """`login` submits a review (APPROVED, CHANGES_REQUESTED, COMMENTED) on `number`."""
        with self.lock:
            self.merged[number]["reviews"].append([login, state])

    def dismiss(self, number: int, login: str) -> None:
        """An admin dismisses `login`'s approval: GitHub shows that review as DISMISSED."""
        with self.lock:
            for review in self.merged[number]["reviews"]:
                if review[0] == login and review[1] == "APPROVED":
                    review[1] = "DISMISSED"

    def trust_requests(self) -> list[dict[str, Any]]:
        """The approval reads that reached this forge, in order."""
        with self.lock:
            return [r for r in self.requests if r["method"] == "GET" and (
                "/commits/" in r["path"] or r["path"].endswith(("/reviews", "/approvals")))]

    def close(self, number: int, merged: bool = False) -> None:
        """What a person does in the forge's UI: close (or merge) pull request `number`."""
        with self.lock:
            pull = next(p for p in self.pulls if p["number"] == number)
            pull["state"] = "closed"
            pull["merged_at"] = "2026-01-01T00:00:00Z" if merged else None

    def open_pulls(self, head: str) -> list[dict[str, Any]]:
        with self.lock:
            return [p for p in self.pulls if p["head"] == head and p["state"] == "open"]

    def statuses_for(self, sha: str, context: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [s for s in self.statuses if s["sha"] == sha
                    and (context is None or s["context"] == context)]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: FakeForge

    def parse_request(self) -> bool:
        ok = super().parse_request()
        if ok and self.server.delay and self.path.startswith("/api/"):
            time.sleep(self.server.delay)  # a forge API that answers slowly
        return ok

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            parsed = json.loads(raw or b"null")
        except ValueError:
            self._answer(400, {"message": "Problems parsing JSON"})
            return
        record = {"method": "POST", "path": self.path, "headers": dict(self.headers),
                  "body": parsed, "raw": raw}
        with self.server.lock:
            self.server.requests.append(record)
            failing = self.server.fail.get(self.path, 0)
            if failing:
                self.server.fail[self.path] = failing - 1
        if failing:
            self._answer(500, {"message": "Server Error"})
        elif self.server.forced is not None:
            self._answer(*self.server.forced)
        elif match := GITHUB_PULLS.match(self.path):
            self._github(match["owner"], match["repo"], record)
        elif match := GITLAB_MRS.match(self.path):
            self._gitlab(match["project"], record)
        elif match := GITHUB_STATUSES.match(self.path):
            self._github_status(match, record)
        elif match := GITLAB_STATUSES.match(self.path):
            self._gitlab_status(match, record)
        elif SLACK.match(self.path):
            self._slack(record)
        elif self.path.startswith("/hooks/"):
            with self.server.lock:
                self.server.received.append(record)
            self._answer(204, None)
        else:
            self._answer(404, {"message": "Not Found"})

    def _github(self, owner: str, repo: str, record: dict[str, Any]) -> None:
        headers, body = record["headers"], record["body"]
        if headers.get("Authorization") != f"Bearer {TOKEN}":
            self._answer(401, {"message": "Bad credentials", "status": "401",
                               "documentation_url": "https://docs.github.com/rest"})
            return
        if (headers.get("Accept") != "application/vnd.github+json"
                or headers.get("X-GitHub-Api-Version") != "2022-11-28"
                or not isinstance(body, dict) or set(body) != {"title", "head", "base", "body"}):
            self._answer(400, {"message": "Problems parsing JSON"})
            return
        key = (f"{owner}/{repo}", body["head"], body["base"])
        if any(p["project"] == key[0] and p["head"] == key[1] and p["base"] == key[2]
               and p["state"] == "open" for p in self.server.pulls):
            self._answer(422, {
                "message": "Validation Failed",
                "errors": [{
                    "resource": "PullRequest", "code": "custom",
                    "message": f"A pull request already exists for {owner}:{body['head']}.",
                }],
                "documentation_url": "https://docs.github.com/rest/pulls/pulls#create-a-pull-request",
                "status": "422",
            })
            return
        self.server.opened.append(key)
        number = len(self.server.opened)
        self.server.pulls.append({"project": key[0], "number": number, "head": key[1],
                                  "base": key[2], "state": "open", "merged_at": None,
                                  "title": body["title"], "body": body["body"]})
        self._answer(201, {
            "url": f"https://api.github.com/repos/{owner}/{repo}/pulls/{number}",
            "id": 1000 + number, "number": number, "state": "open", "title": body["title"],
            "body": body["body"], "html_url": f"https://github.com/{owner}/{repo}/pull/{number}",
            "head": {"ref": body["head"]}, "base": {"ref": body["base"]}, "draft": False,
        })

    def _gitlab(self, project: str, record: dict[str, Any]) -> None:
        headers, body = record["headers"], record["body"]
        if headers.get("PRIVATE-TOKEN") != TOKEN:
            self._answer(401, {"message": "401 Unauthorized"})
            return
        expected = {"source_branch", "target_branch", "title", "description"}
        if not isinstance(body, dict) or set(body) != expected:
            self._answer(400, {"error": "title is missing"})
            return
        key = (project, body["source_branch"], body["target_branch"])
        if any(p["project"] == key[0] and p["head"] == key[1] and p["base"] == key[2]
               and p["state"] == "open" for p in self.server.pulls):
            self._answer(409, {"message": [
                "Another open merge request already exists for this source branch: !1"]})
            return
        self.server.opened.append(key)
        iid = len(self.server.opened)
        self.server.pulls.append({"project": key[0], "number": iid, "head": key[1],
                                  "base": key[2], "state": "open", "merged_at": None,
                                  "title": body["title"], "body": body["description"]})
        path = project.replace("%2F", "/")
        self._answer(201, {
            "id": 5000 + iid, "iid": iid, "project_id": 42, "state": "opened",
            "title": body["title"], "description": body["description"],
            "source_branch": body["source_branch"], "target_branch": body["target_branch"],
            "web_url": f"https://gitlab.example.com/{path}/-/merge_requests/{iid}",
        })

    # -- proposals: list and edit pull requests (adapters/pulls.py cites the docs) ---------

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        path, _, query = self.path.partition("?")
        params = dict(urllib.parse.parse_qsl(query))
        with self.server.lock:
            self.server.requests.append({"method": "GET", "path": path, "params": params,
                                         "headers": dict(self.headers)})
            dropping = self.server.dropping
        if dropping:
            self.close_connection = True
            self.connection.shutdown(2)  # no answer at all: requests raises ConnectionError
            return
        if self.server.redirect_to is not None:
            self.send_response(302)
            self.send_header("Location", self.server.redirect_to + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self._approvals(path, params):
            return
        if match := GITHUB_PULLS.match(path):
            if not self._github_auth():
                return
            owner, _, branch = params.get("head", "").partition(":")
            if params.get("state") != "all" or owner != match["owner"] or not branch:
                self._answer(422, {"message": "Validation Failed"})
                return
            self._list(f"{match['owner']}/{match['repo']}", branch, self._github_view)
        elif match := GITLAB_MRS.match(path):
            if self.headers.get("PRIVATE-TOKEN") != TOKEN:
                self._answer(401, {"message": "401 Unauthorized"})
                return
            if params.get("state") != "all" or not params.get("source_branch"):
                self._answer(400, {"error": "state or source_branch missing"})
                return
            self._list(match["project"], params["source_branch"], self._gitlab_view)
        else:
            self._answer(404, {"message": "Not Found"})

    # -- trust at apply: who approved the pull request that merged a commit ---------------

    def _approvals(self, path: str, params: dict[str, str]) -> bool:
        """Answer the four approval reads; False when `path` is none of them."""
        if match := GITHUB_COMMIT_PULLS.match(path):
            if self._github_auth():
                self._json(200, [self._github_pull(p) for p in self._containing(match["sha"])])
        elif match := GITHUB_REVIEWS.match(path):
            if self._github_auth():
                pull = self.server.merged.get(int(match["number"]))
                per_page, page = int(params.get("per_page", "30")), int(params.get("page", "1"))
                if pull is None:
                    self._answer(404, {"message": "Not Found"})
                elif per_page > 100:
                    self._answer(422, {"message": "Validation Failed"})
                else:
                    reviews = [{"id": i + 1, "user": {"login": who}, "state": state,
                                "submitted_at": f"2026-01-01T00:{i:02d}:00Z"}
                               for i, (who, state) in enumerate(pull["reviews"])]
                    self._json(200, reviews[(page - 1) * per_page:page * per_page])
        elif match := GITLAB_COMMIT_MRS.match(path):
            if self.headers.get("PRIVATE-TOKEN") != TOKEN:
                self._answer(401, {"message": "401 Unauthorized"})
            else:
                self._json(200, [self._gitlab_mr(p) for p in self._containing(match["sha"])])
        elif match := GITLAB_APPROVALS.match(path):
            pull = self.server.merged.get(int(match["iid"]))
            if self.headers.get("PRIVATE-TOKEN") != TOKEN:
                self._answer(401, {"message": "401 Unauthorized"})
            elif pull is None:
                self._answer(404, {"message": "404 Not found"})
            else:
                latest: dict[str, str] = {}
                for who, state in pull["reviews"]:
                    latest[who] = state
                approved = [{"user": {"username": w, "name": w}} for w, st in latest.items()
                            if st == "APPROVED"]
                self._json(200, {"iid": pull["number"], "state": "merged",
                                 "approvals_required": 0, "approved": bool(approved),
                                 "approved_by": approved})
        else:
            return False
        return True

    def _containing(self, sha: str) -> list[dict[str, Any]]:
        with self.server.lock:
            return [p for p in self.server.merged.values() if sha in p["commits"]]

    @staticmethod
    def _github_pull(p: dict[str, Any]) -> dict[str, Any]:
        return {"number": p["number"], "state": "closed", "merged_at": "2026-01-01T00:00:00Z",
                "user": {"login": p["author"]}, "base": {"ref": p["base"]},
                "merge_commit_sha": p["merge"]}

    @staticmethod
    def _gitlab_mr(p: dict[str, Any]) -> dict[str, Any]:
        return {"iid": p["number"], "id": 9000 + p["number"], "state": "merged",
                "target_branch": p["base"], "author": {"username": p["author"]},
                "merge_commit_sha": p["merge"]}

    def _json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_PATCH(self) -> None:  # noqa: N802 - stdlib name
        match = GITHUB_PULL.match(self.path)
        body = self._body("PATCH")
        if match is None:
            self._answer(404, {"message": "Not Found"})
        elif self._github_auth():
            if not isinstance(body, dict) or not set(body) <= {"title", "body", "state", "base",
                                                               "maintainer_can_modify"}:
                self._answer(422, {"message": "Validation Failed"})
                return
            self._edit(f"{match['owner']}/{match['repo']}", int(match["number"]), body,
                       self._github_view)

    def do_PUT(self) -> None:  # noqa: N802 - stdlib name
        match = GITLAB_MR.match(self.path)
        body = self._body("PUT")
        if match is None:
            self._answer(404, {"message": "Not Found"})
        elif self.headers.get("PRIVATE-TOKEN") != TOKEN:
            self._answer(401, {"message": "401 Unauthorized"})
        elif not isinstance(body, dict) or not set(body) <= {"title", "description",
                                                           "target_branch", "state_event"}:
            self._answer(400, {"error": "unknown parameter"})
        else:
            edit = {"title": body.get("title"), "body": body.get("description")}
            self._edit(match["project"], int(match["iid"]),
                       {k: v for k, v in edit.items() if v is not None}, self._gitlab_view)

    def _body(self, method: str) -> Any:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            body = None
        with self.server.lock:
            self.server.requests.append({"method": method, "path": self.path,
                                         "headers": dict(self.headers), "body": body})
        return body

    def _github_auth(self) -> bool:
        if self.headers.get("Authorization") != f"Bearer {TOKEN}" or self.headers.get(
                "X-GitHub-Api-Version") != "2022-11-28":
            self._answer(401, {"message": "Bad credentials", "status": "401"})
            return False
        return True

    def _list(self, project: str, head: str, view: Any) -> None:
        with self.server.lock:
            found = [view(p) for p in reversed(self.server.pulls)
                     if p["project"] == project and p["head"] == head]
        data = json.dumps(found).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _edit(self, project: str, number: int, body: dict[str, Any], view: Any) -> None:
        with self.server.lock:
            pull = next((p for p in self.server.pulls
                         if p["project"] == project and p["number"] == number), None)
            if pull is not None:
                pull.update({k: body[k] for k in ("title", "body") if k in body})
        if pull is None:
            self._answer(404, {"message": "Not Found"})
        else:
            self._answer(200, view(pull))

    @staticmethod
    def _github_view(p: dict[str, Any]) -> dict[str, Any]:
        owner, repo = p["project"].split("/", 1)
        return {"number": p["number"], "state": p["state"], "merged_at": p["merged_at"],
                "title": p["title"], "body": p["body"], "head": {"ref": p["head"]},
                "base": {"ref": p["base"]},
                "html_url": f"https://github.com/{owner}/{repo}/pull/{p['number']}"}

    @staticmethod
    def _gitlab_view(p: dict[str, Any]) -> dict[str, Any]:
        state = "merged" if p["merged_at"] else "opened" if p["state"] == "open" else "closed"
        path = p["project"].replace("%2F", "/")
        return {"iid": p["number"], "state": state, "title": p["title"],
                "description": p["body"], "source_branch": p["head"],
                "target_branch": p["base"],
                "web_url": f"https://gitlab.example.com/{path}/-/merge_requests/{p['number']}"}

    def _github_status(self, match: re.Match[str], record: dict[str, Any]) -> None:
        headers, body = record["headers"], record["body"]
        if headers.get("Authorization") != f"Bearer {TOKEN}":
            self._answer(401, {"message": "Bad credentials", "status": "401"})
            return
        if (headers.get("Accept") != "application/vnd.github+json"
                or headers.get("X-GitHub-Api-Version") != "2022-11-28"
                or not isinstance(body, dict)
                or not set(body) <= {"state", "target_url", "description", "context"}
                or body.get("state") not in GITHUB_STATES
                or not all(isinstance(v, str) for v in body.values())):
            self._answer(422, {"message": "Validation Failed", "status": "422"})
            return
        if len(body.get("description", "")) > 140:
            self._answer(422, {"message": "Validation Failed", "errors": [
                {"resource": "Status", "code": "custom", "field": "description",
                 "message": "description is too long (maximum is 140 characters)"}]})
            return
        context = body.get("context", "default")
        with self.server.lock:
            self.server.statuses.append({"forge": "github", "sha": match["sha"],
                                         "repo": f"{match['owner']}/{match['repo']}",
                                         "context": context, **body})
            number = len(self.server.statuses)
        self._answer(201, {"id": number, "state": body["state"], "context": context,
                           "description": body.get("description"),
                           "target_url": body.get("target_url"),
                           "created_at": "2026-01-01T00:00:00Z"})

    def _gitlab_status(self, match: re.Match[str], record: dict[str, Any]) -> None:
        headers, body = record["headers"], record["body"]
        if headers.get("PRIVATE-TOKEN") != TOKEN:
            self._answer(401, {"message": "401 Unauthorized"})
            return
        allowed = {"state", "ref", "name", "context", "target_url", "description",
                   "coverage", "pipeline_id"}
        if not isinstance(body, dict) or not set(body) <= allowed:
            self._answer(400, {"error": "unknown parameter"})
            return
        if body.get("state") not in GITLAB_STATES:
            self._answer(400, {"error": "state does not have a valid value"})
            return
        context = body.get("name") or body.get("context") or "default"
        with self.server.lock:
            self.server.statuses.append({"forge": "gitlab", "sha": match["sha"],
                                         "repo": match["project"], **body,
                                         "context": context})
            number = len(self.server.statuses)
        self._answer(201, {"id": number, "sha": match["sha"], "status": body["state"],
                           "name": context, "description": body.get("description"),
                           "target_url": body.get("target_url")})

    def _slack(self, record: dict[str, Any]) -> None:
        body = record["body"]
        if (record["headers"].get("Content-Type") != "application/json"
                or not isinstance(body, dict) or not isinstance(body.get("text"), str)):
            self._plain(400, b"invalid_payload")
            return
        with self.server.lock:
            self.server.received.append(record)
        self._plain(200, b"ok")

    def _plain(self, status: int, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _answer(self, status: int, payload: dict[str, Any] | None) -> None:
        if payload is None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture()
def forge() -> Iterator[FakeForge]:
    server = FakeForge()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


