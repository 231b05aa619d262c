"""The read-only web page: `GET /` (environments × models, then environments × prompts) and
`GET /models/<name>` (a model's or prompt's versions, pending promotions and timeline),
rendered on the server with Jinja2 templates shipped in the package (templates/). No
scripts, no external assets: the cluster may have no internet, and a page without scripts
has nothing to inject into.

Safety: every value goes through Jinja2's autoescape; model names in links are URL-encoded
(any name, `/` included); the repository URL and the MLflow UI URL are shown without
credentials; responses carry a Content-Security-Policy that forbids scripts outright.

Git history for a model's timeline is read through its own GitSource on the controller's
cache (the loop's instance is not thread-safe), one request at a time. A commit's history
never changes, so three caches keep it cheap at 1,000 models: the revisions at the newest
commit, each revision's parsed {model: version} (one parse serves every model's timeline),
and the timeline per (commit, model). Loading `/` warms the first two in the background."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from mlflow_gitops.adapters.forge import parse_remote
from mlflow_gitops.core.errors import ConfigError, GitOpsError
from mlflow_gitops.core.model import DEFAULT_REGISTRY
from mlflow_gitops.core.tags import OWNERSHIP_PREFIX
from mlflow_gitops.desired.history import Revision, listed
from mlflow_gitops.planning import overview, timeline_svg
from mlflow_gitops.planning.delivery import DeliveryMetrics
from mlflow_gitops.planning.ledger import Interval
from mlflow_gitops.planning.overview import PageData
from mlflow_gitops.planning.status import model_versions
from mlflow_gitops.planning.timeline import Segment, Timeline, annotate, authors, timeline
from mlflow_gitops.planning.timeline_ledger import with_applied
from mlflow_gitops.policy.units import duration

log = logging.getLogger(__name__)
HTML = "text/html; charset=utf-8"
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                               "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
HISTORY_DEPTH = 100  # first-parent commits read per environment file
CACHE_SIZE = 256  # (commit, model) timelines kept
PARSED_SIZE = 4 * HISTORY_DEPTH  # parsed revisions kept (each: one file's {model: version})


class DeliveryView(Protocol):
    """The controller's delivery figures (loop.delivery.DeliveryWatch)."""

    rows: list[tuple[DeliveryMetrics, list[DeliveryMetrics]]]
    computed_at: float | None
    error: str | None
    window: float


def _duration(seconds: float | None) -> str:
    return "-" if seconds is None else duration(seconds)


class HistoryReader(Protocol):
    def file_history(self, relpath: str, max_count: int = 50, rev: str | None = None,
                     first_parent: bool = False) -> list[Revision]: ...


def commit_link_base(repo_url: str | None) -> str | None:
    """`https://host/owner/repo/commit/` (GitHub) or `.../-/commit/` (GitLab) for a
    GitHub- or GitLab-like remote; None for anything else (file://, other hosts)."""
    if not repo_url:
        return None
    try:
        remote = parse_remote(repo_url)
    except ConfigError:
        return None
    sep = "/commit/" if remote.kind == "github" else "/-/commit/"
    return f"https://{remote.host}/{remote.owner}/{remote.repo}{sep}"


def safe_ui_url(url: str | None) -> str | None:
    """The MLflow UI base URL, refused when it carries credentials (it is shown in links)."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("--mlflow-ui-url: expected http(s)://HOST[/PATH] (the MLflow UI's "
                          "address as a browser opens it)")
    if parts.username or parts.password:
        raise ConfigError("--mlflow-ui-url must not carry credentials: the page shows it in "
                          "links")
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def model_path(name: str) -> str:
    return "/models/" + quote(name, safe="")


class Page:
    """Renders the two pages from `data()` (the controller's view at request time)."""

    def __init__(self, data: Callable[[], PageData], *, repo_url: str | None = None,
                 repo_label: str = "", branch: str = "", mlflow_ui_url: str | None = None,
                 history: HistoryReader | None = None,
                 clock: Callable[[], datetime] | None = None,
                 history_wait: float = 3.0, delivery: DeliveryView | None = None,
                 intervals: Callable[[str], Sequence[Interval]] | None = None) -> None:
        self.data = data
        self.delivery = delivery  # the delivery table's figures (None: no ledger)
        self.intervals = intervals  # a model's applied intervals from the ledger
        self.history_wait = history_wait  # seconds a model page waits for a history read
        self.headers = HEADERS
        self.commit_base = commit_link_base(repo_url)
        self.repo_label = repo_label
        self.branch = branch
        self.ui_url = safe_ui_url(mlflow_ui_url)
        self.history = history
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[str, str], Timeline] = OrderedDict()
        self._parsed: OrderedDict[tuple[str, str], Mapping[str, int] | None] = OrderedDict()
        self._revisions: tuple[object, Mapping[str, Sequence[Revision]]] | None = None
        self._warmed: str | None = None
        self.env = Environment(
            loader=FileSystemLoader(Path(__file__).with_name("templates")),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        self.env.filters.update(model_path=model_path, short=lambda s: (s or "")[:12],
                                commit_url=self.commit_url, when=_when,
                                epoch=lambda t: _when(datetime.fromtimestamp(t, timezone.utc)),
                                dur=_duration, rate=lambda r: "-" if r is None else f"{r:.0%}")
        self.env.globals.update(state_style=overview.state_style, state_of=overview.state_of,
                                ui_model=self.ui_model, ui_version=self.ui_version,
                                ui_prompt=self.ui_prompt)

    # -- routing ----------------------------------------------------------------------------

    def handles(self, route: str) -> bool:
        return route == "/" or route.startswith("/models/")

    def render(self, route: str) -> tuple[int, bytes, str]:
        """(status, body, content type) for a GET of `route` (the path, no query)."""
        started = time.perf_counter()
        data = self.data()
        if route == "/":
            code, body = 200, self._index(data)
        else:
            code, body = self._model(data, unquote(route[len("/models/"):]))
        head, sep, tail = body.rpartition("@@RENDER_MS@@")  # the footer's, after any name
        if sep:
            body = head + f"{(time.perf_counter() - started) * 1000:.0f}" + tail
        return code, body.encode("utf-8"), HTML

    # -- links ------------------------------------------------------------------------------

    def commit_url(self, sha: str | None) -> str | None:
        if not sha or not self.commit_base or not all(c in "0123456789abcdef" for c in sha):
            return None
        return self.commit_base + sha

    def ui_model(self, name: str, registry: str = DEFAULT_REGISTRY) -> str | None:
        """The model's page in the MLflow UI: configured for the default registry only."""
        if not self.ui_url or registry != DEFAULT_REGISTRY:
            return None
        return f"{self.ui_url}/#/models/{quote(name, safe='')}"

    def ui_prompt(self, name: str, registry: str = DEFAULT_REGISTRY) -> str | None:
        """The prompt's page in the MLflow UI (MLflow 3's `#/prompts/<name>`)."""
        if not self.ui_url or registry != DEFAULT_REGISTRY:
            return None
        return f"{self.ui_url}/#/prompts/{quote(name, safe='')}"

    def ui_version(self, name: str, version: int, registry: str = DEFAULT_REGISTRY
                   ) -> str | None:
        base = self.ui_model(name, registry)
        return f"{base}/versions/{version}" if base else None

    # -- pages ------------------------------------------------------------------------------

    def _common(self, data: PageData) -> dict[str, object]:
        return {"data": data, "repo": self.repo_label, "branch": self.branch,
                "now": self.clock()}

    def _index(self, data: PageData) -> str:
        columns, rows = overview.grid(data.rows, data.desired, "model")
        prompt_columns, prompt_rows = overview.grid(data.rows, data.desired, "prompt")
        self.warm(data)
        return self.env.get_template("index.html").render(
            **self._common(data), columns=columns, rows=rows,
            prompt_columns=prompt_columns, prompt_rows=prompt_rows,
            assignments=len(overview.split(data.rows)[0]),
            counts=overview.counts(data.rows), unsettled=overview.unsettled(data.rows),
            delivery=self._delivery())

    def _delivery(self) -> dict[str, object] | None:
        if self.delivery is None:
            return None
        computed = self.delivery.computed_at
        note = (f"computed {_when(datetime.fromtimestamp(computed, timezone.utc))}"
                if computed else "not computed yet")
        if self.delivery.error:
            note += f"; the ledger cannot be read now: {self.delivery.error}"
        return {"rows": [env for env, _ in self.delivery.rows], "note": note,
                "days": round(self.delivery.window / 86400)}

    def _applied(self, tl: Timeline, model: str) -> Timeline:
        """The bars from the ledger's applied intervals; git's view where it cannot be read."""
        if self.intervals is None:
            return tl
        try:
            return with_applied(tl, self.intervals(model))
        except GitOpsError as exc:
            log.warning("timeline of %s drawn from git only: the ledger cannot be read: %s",
                        model, exc)
            return tl

    def _model(self, data: PageData, name: str) -> tuple[int, str]:
        rows = [r for r in data.rows if r.model == name]
        live, registry = None, DEFAULT_REGISTRY
        for candidate in sorted(data.snapshots, key=lambda r: (r != DEFAULT_REGISTRY, r)):
            live = data.snapshots[candidate].model(name)
            if live is not None:
                registry = candidate  # the default registry's versions first
                break
        if not rows and live is None:
            return 404, self.env.get_template("missing.html").render(
                **self._common(data), model=name)
        prompt = any(r.kind == "prompt" for r in rows) or bool(live and live.is_prompt)
        versions = model_versions(live, data.desired) if live else []
        lineage = {v.version: dict(v.environments) for v in versions}
        tl, history_error = self._timeline(data, name)
        tl = annotate(tl, data.recent, lineage, {r.environment: r.live for r in rows}
                      ) if tl else None
        tl = self._applied(tl, name) if tl else None
        svg = Markup(timeline_svg.render_svg(tl, self.clock())) if tl else None
        plan = data.plan
        pending = [c for c in plan.changes if c.model == name] if plan else []
        problems = [e for e in plan.errors if e.model == name] if plan else []
        recent = [r for r in data.recent if r.model == name]
        return 200, self.env.get_template("model.html").render(
            **self._common(data), model=name, prompt=prompt, rows=rows, versions=versions,
            registry=registry,
            who=authors(tl) if tl else {}, svg=svg, history_error=history_error,
            pending=pending, problems=problems, recent=recent,
            changes=_changes(tl) if tl else [], ownership_prefix=OWNERSHIP_PREFIX)

    def _timeline(self, data: PageData, model: str) -> tuple[Timeline | None, str | None]:
        """The model's timeline, or why there is none yet. A first read of a big history
        runs in the background; the page does not wait for it longer than `history_wait`."""
        commit = data.last_seen_commit
        if self.history is None or data.desired is None or commit is None:
            return None, None
        files = {env.name: env.file for env in overview.pipeline(data.desired)}
        key = (commit, model)
        self.warm(data)
        if not self._lock.acquire(timeout=self.history_wait):
            return None, ("the git history of this commit is still being read (once per "
                          "commit): reload in a few seconds")
        try:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached, None
            try:
                revisions = self._history_at(commit, files)
            except GitOpsError as exc:
                return None, f"the git history could not be read: {exc}"
            result = timeline(model, files, revisions, self._parse)
            self._cache[key] = result
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
            return result, None
        finally:
            self._lock.release()

    def warm(self, data: PageData) -> None:
        """Read and parse the history of `data`'s commit in the background (once per
        commit), so the first model page after a merge does not wait for it."""
        commit = data.last_seen_commit
        if self.history is None or data.desired is None or commit is None:
            return
        if commit == self._warmed:
            return
        self._warmed = commit
        files = {env.name: env.file for env in overview.pipeline(data.desired)}

        def run() -> None:
            try:
                with self._lock:
                    for env, revisions in self._history_at(commit, files).items():
                        for revision in revisions:
                            self._parse(revision, files[env])
            except Exception:  # noqa: BLE001 - a failed warm-up only costs the first click
                log.debug("warming the timeline cache failed", exc_info=True)

        threading.Thread(target=run, name="page-warm", daemon=True).start()

    def _history_at(self, commit: str, files: Mapping[str, str]
                    ) -> Mapping[str, Sequence[Revision]]:
        """The environment files' first-parent revisions at `commit` (the lock is held);
        kept for the newest commit asked about."""
        key = (commit, tuple(files.items()))
        if self._revisions is None or self._revisions[0] != key:
            assert self.history is not None
            read = {env: self.history.file_history(path, HISTORY_DEPTH, rev=commit,
                                                   first_parent=True)
                    for env, path in files.items()}
            self._revisions = (key, read)
        return self._revisions[1]

    def _parse(self, revision: Revision, file: str) -> Mapping[str, int] | None:
        """history.listed, remembered per (commit, file): a revision never changes, and one
        parse serves every model's timeline (the lock is held)."""
        key = (revision.sha, file)
        if key in self._parsed:
            self._parsed.move_to_end(key)
            return self._parsed[key]
        value = listed(revision, file)
        if value is not None:
            value = {sys.intern(name): version for name, version in value.items()}
        self._parsed[key] = value
        while len(self._parsed) > PARSED_SIZE:
            self._parsed.popitem(last=False)
        return value


def _changes(tl: Timeline) -> list[Segment]:
    """The timeline's assignments, newest first (git's order within an environment)."""
    order = sorted(enumerate(tl.segments), key=lambda p: (p[1].start, p[0]), reverse=True)
    return [s for _, s in order]


def _when(value: datetime | str | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return value
        return _when(parsed)
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
