"""Who approved the pull request that brought a commit to the branch, read from the forge
(trust at apply, `approvals:`). Only reads; the token goes to the configured forge's API
root only, and redirects are never followed (adapters.forge.send).

Endpoints (request and answer shapes from the official docs):
- GitHub "List pull requests associated with a commit":
  `GET /repos/{owner}/{repo}/commits/{commit_sha}/pulls`; each item is a pull request with
  `number`, `state`, `merged_at` (null unless merged), `user.login` (the author),
  `base.ref` (the branch it went into), `merge_commit_sha`.
  https://docs.github.com/en/rest/commits/commits?apiVersion=2022-11-28#list-pull-requests-associated-with-a-commit
- GitHub "List reviews for a pull request": `GET /repos/{owner}/{repo}/pulls/{pull_number}/
  reviews?per_page=100&page=N`, in chronological order; each has `user.login`, `state`
  (APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED, PENDING) and `submitted_at`. A
  dismissed review's state becomes DISMISSED. A reviewer's latest APPROVED /
  CHANGES_REQUESTED / DISMISSED review is their verdict (a later comment does not withdraw
  an approval, as on GitHub's own page).
  https://docs.github.com/en/rest/pulls/reviews?apiVersion=2022-11-28#list-reviews-for-a-pull-request
- GitLab "List merge requests associated with a commit":
  `GET /projects/:id/repository/commits/:sha/merge_requests`; each item has `iid`, `state`
  (merged, opened, closed, locked), `target_branch`, `author.username`, `merge_commit_sha`.
  https://docs.gitlab.com/api/commits/#list-merge-requests-associated-with-a-commit
- GitLab merge request approvals: `GET /projects/:id/merge_requests/:merge_request_iid/
  approvals`; `approved_by` is a list of `{"user": {"username", …}}` — who approves now
  (an approval withdrawn or reset is no longer listed).
  https://docs.gitlab.com/api/merge_request_approvals/#get-configuration-for-approvals-on-a-specific-merge-request
Authentication headers as in mlflow_gitops.adapters.forge."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from mlflow_gitops.adapters.forge_target import ForgeTarget
from mlflow_gitops.core.errors import ForgeError
from mlflow_gitops.core.trust import Approvals

MAX_PAGES = 10  # 1,000 reviews: more is no pull request a person reviewed
_VERDICTS = ("APPROVED", "CHANGES_REQUESTED", "DISMISSED")


class ForgeUnavailable(ForgeError):
    """The forge could not answer now (unreachable, 5xx, 429): the change waits."""

    transient = True


def approvals(target: ForgeTarget, commit: str, merge: str, branch: str) -> Approvals:
    """The merged pull request into `branch` that contains `commit` (or is `merge`), with who
    approves it now; `Approvals()` (no pull request) for a direct push."""
    if target.remote.kind == "github":
        return _github(target, commit, merge, branch)
    return _gitlab(target, commit, merge, branch)


def _github(target: ForgeTarget, commit: str, merge: str, branch: str) -> Approvals:
    pull = _merged(target, commit, merge, lambda sha: _get_list(
        target, f"/commits/{quote(sha, safe='')}/pulls", {"per_page": "100"}),
        lambda p: bool(p.get("merged_at")) and _ref(p.get("base")) == branch)
    if pull is None:
        return Approvals()
    number = int(pull["number"])
    author = _login(pull.get("user"))
    latest: dict[str, str] = {}
    for page in range(1, MAX_PAGES + 1):
        reviews = _get_list(target, f"/pulls/{number}/reviews",
                            {"per_page": "100", "page": str(page)})
        for review in reviews:
            state = str(review.get("state") or "")
            who = _login(review.get("user"))
            if who and state in _VERDICTS:
                latest[who] = state  # chronological: the last one stands
        if len(reviews) < 100:
            break
    approving = sorted(who for who, state in latest.items() if state == "APPROVED")
    return Approvals(f"#{number}", author, tuple(w for w in approving if w != author),
                     author in approving)


def _gitlab(target: ForgeTarget, commit: str, merge: str, branch: str) -> Approvals:
    mr = _merged(target, commit, merge, lambda sha: _get_list(
        target, f"/repository/commits/{quote(sha, safe='')}/merge_requests", None),
        lambda m: m.get("state") == "merged" and m.get("target_branch") == branch)
    if mr is None:
        return Approvals()
    iid = int(mr["iid"])
    author = _login(mr.get("author"), "username")
    status, answer = _get(target, f"/merge_requests/{iid}/approvals", None)
    data = _ok(target, status, answer)
    if not isinstance(data, dict):
        raise ForgeError(f"{target.remote.label} answered the approvals of !{iid} with no "
                         "object")
    approving = sorted({_login(a.get("user"), "username") for a in data.get("approved_by") or []
                        if isinstance(a, dict)} - {""})
    return Approvals(f"!{iid}", author, tuple(w for w in approving if w != author),
                     author in approving)


def _merged(target: ForgeTarget, commit: str, merge: str, listing: Any, wanted: Any
            ) -> dict[str, Any] | None:
    """The first pull request `listing(sha)` shows for `commit`, then `merge`, that
    `wanted` accepts (merged into the branch)."""
    for sha in dict.fromkeys((commit, merge)):
        for item in listing(sha):
            if isinstance(item, dict) and wanted(item) and (
                    isinstance(item.get("number"), int) or isinstance(item.get("iid"), int)):
                return item
    return None


def _get(target: ForgeTarget, suffix: str, params: dict[str, str] | None) -> tuple[int, Any]:
    try:
        return target.get(suffix, params)
    except ForgeError as exc:  # the network: time may fix it
        raise ForgeUnavailable(str(exc)) from exc


def _get_list(target: ForgeTarget, suffix: str, params: dict[str, str] | None
              ) -> list[dict[str, Any]]:
    status, answer = _get(target, suffix, params)
    data = _ok(target, status, answer)
    if not isinstance(data, list):
        raise ForgeError(f"{target.remote.label} answered {suffix.split('/')[1]} with no list")
    return [item for item in data if isinstance(item, dict)]


def _ok(target: ForgeTarget, status: int, answer: Any) -> Any:
    label = f"the {target.remote.label} API at {target.api_url}"
    if status == 200:
        return answer
    if status == 429 or status >= 500:
        raise ForgeUnavailable(f"{label} answered {status}")
    if status in (401, 403):
        raise ForgeError(f"{label} refused to show pull requests and reviews ({status}): the "
                         "token in forge.token_file needs read access to the repository")
    if status == 404:
        raise ForgeError(f"{label} has no repository {target.remote.owner}/"
                         f"{target.remote.repo}, or the token cannot see it (404)")
    raise ForgeError(f"{label} answered {status}")


def _login(user: Any, field: str = "login") -> str:
    return str(user.get(field) or "") if isinstance(user, dict) else ""


def _ref(base: Any) -> str:
    return str(base.get("ref") or "") if isinstance(base, dict) else ""
