"""A local HTTP server that plays the GitHub and GitLab create-pull-request APIs, checking
each request the way the official docs specify and answering with the documented shapes. It
keeps what it opened, so a second identical request meets the real conflict answer (GitHub
422, GitLab 409) rather than a scripted one.

- GitHub "Create a pull request":
  https://docs.github.com/en/rest/pulls/pulls?apiVersion=2022-11-28#create-a-pull-request
- GitLab "Create MR": https://docs.gitlab.com/api/merge_requests/#create-mr
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.support.servers import free_port

TOKEN = "ghp_s3cr3t-token-value-0123456789"
GITHUB_PULLS = re.compile(r"^/api/v3/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/pulls$")
GITLAB_MRS = re.compile(r"^/api/v4/projects/(?P<project>[^/]+)/merge_requests$")


class FakeForge(ThreadingHTTPServer):
    """GitHub (`/api/v3`) and GitLab (`/api/v4`) create endpoints, with their real checks."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", free_port()), _Handler)
        self.requests: list[dict[str, Any]] = []
        self.opened: list[tuple[str, str, str]] = []  # (project, head, base)
        self.forced: tuple[int, dict[str, Any]] | None = None  # answer every request so

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: FakeForge

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        record = {"method": "POST", "path": self.path, "headers": dict(self.headers),
                  "body": json.loads(raw or b"null")}
        self.server.requests.append(record)
        if self.server.forced is not None:
            self._answer(*self.server.forced)
        elif match := GITHUB_PULLS.match(self.path):
            self._github(match["owner"], match["repo"], record)
        elif match := GITLAB_MRS.match(self.path):
            self._gitlab(match["project"], record)
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
        if key in self.server.opened:
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
        if key in self.server.opened:
            self._answer(409, {"message": [
                "Another open merge request already exists for this source branch: !1"]})
            return
        self.server.opened.append(key)
        iid = len(self.server.opened)
        path = project.replace("%2F", "/")
        self._answer(201, {
            "id": 5000 + iid, "iid": iid, "project_id": 42, "state": "opened",
            "title": body["title"], "description": body["description"],
            "source_branch": body["source_branch"], "target_branch": body["target_branch"],
            "web_url": f"https://gitlab.example.com/{path}/-/merge_requests/{iid}",
        })

    def _answer(self, status: int, payload: dict[str, Any]) -> None:
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


