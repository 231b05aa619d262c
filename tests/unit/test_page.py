"""The read-only web page: the grid, a model's page, escaping, links and the HTTP rules."""

from __future__ import annotations

import dataclasses
import json
import re
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser

import pytest
from mlflow_gitops.adapters.http import HttpServer
from mlflow_gitops.adapters.page import Page, commit_link_base, model_path, safe_ui_url
from mlflow_gitops.core.errors import ConfigError
from mlflow_gitops.desired.history import Revision
from mlflow_gitops.planning.overview import PageData
from mlflow_gitops.planning.planner import plan
from mlflow_gitops.planning.status import environment_status
from mlflow_gitops.planning.timeline import ApplyRecord

from tests.support.builders import desired, env, live
from tests.support.envfiles import HEADER

HOSTILE = '<img src=x onerror=alert(1)> "q" & \'co\''
SHA = "a" * 40
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)


def data(models: dict[str, tuple[int, int]] | None = None, **extra: object) -> PageData:
    """Production and staging stage environments; `models`: name → (production, staging)
    desired versions; live has v1 to v3 and v9, production at its desired version, staging
    at v1."""
    models = models or {"fraud": (2, 3), HOSTILE: (2, 1)}
    state = desired(env("production", "stage:Production", {m: p for m, (p, _) in models.items()}),
                    env("staging", "stage:Staging", {m: s for m, (_, s) in models.items()}),
                    commit=SHA)
    snap = live({m: {1: "Staging", 2: "None", 3: "None", 9: "None", p: "Production"}
                 for m, (p, _) in models.items()},
                tags={(m, p): {"gitops.env.production": SHA} for m, (p, _) in models.items()})
    the_plan = plan(state, {"default": snap})
    base = PageData(rows=tuple(environment_status(state, {"default": snap}, the_plan)),
                    desired=state, snapshots={"default": snap}, plan=the_plan,
                    last_seen_commit=SHA, last_applied_commit=SHA)
    return dataclasses.replace(base, **extra)  # type: ignore[arg-type]


class Cells(HTMLParser):
    """The grid as the browser would see it: (model, environment) → state word."""

    def __init__(self) -> None:
        super().__init__()
        self.model: str | None = None
        self.cells: dict[tuple[str, str], str] = {}
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag in ("script", "img", "iframe"):
            self.scripts += 1
        if tag == "tr" and "data-model" in a:
            self.model = a["data-model"]
        if tag == "td" and "data-state" in a and self.model is not None:
            self.cells[(self.model, a["data-env"] or "")] = a["data-state"] or ""


def render(page: Page, route: str) -> tuple[int, str]:
    code, body, content_type = page.render(route)
    assert content_type.startswith("text/html")
    return code, body.decode()


def test_grid_shows_every_environment_and_model_with_its_state() -> None:
    """Every (environment, model) pair is a cell carrying its state word; a hostile model
    name is escaped text, never markup, and its link is URL-encoded."""
    page = Page(lambda: data())
    code, html = render(page, "/")
    parsed = Cells()
    parsed.feed(html)
    assert code == 200
    assert parsed.cells == {("fraud", "production"): "Synced",
                            ("fraud", "staging"): "OutOfSync",
                            (HOSTILE, "production"): "Synced",
                            (HOSTILE, "staging"): "Synced"}
    assert parsed.scripts == 0
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert 'href="/models/%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E%20%22q%22%20%26%20' \
           '%27co%27"' in html


def test_state_words_carry_a_symbol_and_unknown_words_a_neutral_colour() -> None:
    """A state word the page does not know still shows, with the neutral class; a Waiting
    cell says when it expects to proceed."""
    d = data({"fraud": (2, 1)})
    rows = (dataclasses.replace(d.rows[0], sync="Exploded"),  # type: ignore[arg-type]
            dataclasses.replace(d.rows[1], sync="Waiting", until=NOW.timestamp()))
    _, html = render(Page(lambda: dataclasses.replace(d, rows=rows)), "/")
    assert re.search(r'class="state unknown" data-state="Exploded"><span aria-hidden="true">'
                     r'.</span>Exploded', html)
    assert 'class="state waiting" data-state="Waiting"><span aria-hidden="true">◷</span>' in html
    assert "expected to proceed 2026-03-02 12:00:00 UTC" in html


def test_commits_link_to_the_forge_only_for_github_and_gitlab_remotes() -> None:
    """GitHub and GitLab remotes (https, ssh, scp-like) give commit links; a file:// remote
    gives none; credentials never reach a link."""
    assert commit_link_base("https://github.com/acme/models.git") == \
        "https://github.com/acme/models/commit/"
    assert commit_link_base("git@gitlab.example.com:ml/team/models.git") == \
        "https://gitlab.example.com/ml/team/models/-/commit/"
    assert commit_link_base("ssh://git@github.com/acme/models") == \
        "https://github.com/acme/models/commit/"
    assert commit_link_base("https://user:tok3n@github.com/acme/models.git") == \
        "https://github.com/acme/models/commit/"
    assert commit_link_base("file:///srv/git/models.git") is None
    _, html = render(Page(lambda: data(), repo_url="https://github.com/acme/models.git"), "/")
    assert f'href="https://github.com/acme/models/commit/{SHA}"' in html
    _, html = render(Page(lambda: data(), repo_url="file:///x.git"), "/")
    assert "/commit/" not in html


def test_mlflow_ui_links_are_encoded_and_a_url_with_credentials_is_refused() -> None:
    """Model links point at the MLflow UI's model page with the name encoded; a UI URL with
    user info is a configuration error rather than a leaked password."""
    page = Page(lambda: data(), mlflow_ui_url="https://mlflow.example.com/")
    _, html = render(page, "/")
    assert 'href="https://mlflow.example.com/#/models/fraud"' in html
    assert "https://mlflow.example.com/#/models/%3Cimg%20src" in html
    with pytest.raises(ConfigError, match="credentials"):
        safe_ui_url("https://admin:hunter2@mlflow.example.com")
    with pytest.raises(ConfigError):
        safe_ui_url("javascript:alert(1)")


def test_recent_changes_and_an_invalid_commit_are_shown() -> None:
    """The ring of applied changes is listed newest first; an invalid commit is a banner."""
    recent = (ApplyRecord(NOW, "production", "fraud", 2, "promote", SHA,
                          "fraud v2: Staging → Production"),)
    _, html = render(Page(lambda: data(recent=recent, invalid_commit="b" * 40,
                                       last_error="environments/x.yaml:3: bad")), "/")
    assert "fraud v2: Staging → Production" in html
    assert "Invalid commit" in html and "environments/x.yaml:3: bad" in html


class History:
    """Revisions as the git source returns them, for the model page's timeline."""

    def __init__(self) -> None:
        self.calls = 0

    def file_history(self, relpath: str, max_count: int = 50, rev: str | None = None,
                     first_parent: bool = False) -> list[Revision]:
        self.calls += 1
        assert first_parent and rev == SHA
        stage = "Production" if "production" in relpath else "Staging"
        return [Revision(SHA, "Ada <ada@example.com>", NOW - timedelta(hours=1), "promote v2",
                         HEADER + f"target:\n  stage: {stage}\nmodels:\n  fraud: 2\n"),
                Revision("c" * 40, "Bob <bob@example.com>", NOW - timedelta(days=1), "v1",
                         HEADER + f"target:\n  stage: {stage}\nmodels:\n  fraud: 1\n")]


def test_model_page_shows_versions_lineage_authors_and_a_cached_timeline() -> None:
    """/models/<name> lists the versions with who set them, embeds the timeline SVG, and
    reads git once per (commit, model)."""
    history = History()
    page = Page(lambda: data({"fraud": (2, 3)}), history=history, clock=lambda: NOW)
    code, html = render(page, "/models/fraud")
    assert code == 200
    assert '<tr data-version="2">' in html and '<tr data-version="9">' in html
    assert "by Ada &lt;ada@example.com&gt;" in html
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in html
    assert 'data-version="1"' in html  # the v1 segment of the timeline
    assert "staging" in html and "v3: None → Staging" in html  # the pending promotion
    calls = history.calls
    render(page, "/models/fraud")
    assert history.calls == calls


def test_model_page_of_a_hostile_or_unknown_name() -> None:
    """The hostile name round-trips through its encoded URL and is escaped; an unknown name
    is a 404 page that shows the name escaped."""
    page = Page(lambda: data())
    code, html = render(page, model_path(HOSTILE))
    parsed = Cells()
    parsed.feed(html)
    assert code == 200 and parsed.scripts == 0
    assert "&lt;img src=x onerror=alert(1)&gt; &#34;q&#34; &amp; &#39;co&#39;" in html
    code, html = render(page, "/models/" + "%3Cscript%3Enope%2Fx")
    assert code == 404 and "&lt;script&gt;nope/x" in html and "<script>" not in html


def test_http_serves_the_page_read_only_with_a_script_free_policy() -> None:
    """GET and HEAD of / answer 200 (HEAD without a body) with a CSP forbidding scripts;
    POST, PUT and DELETE are 405 with Allow: GET, HEAD."""
    server = HttpServer("127.0.0.1:0", ready=lambda: (True, ""), metrics=lambda: (b"", "x"),
                        status=lambda _query: {}, on_webhook=lambda: None,
                        page=Page(lambda: data()))
    server.start()
    try:
        with urllib.request.urlopen(server.url + "/", timeout=5) as resp:
            assert resp.status == 200
            assert "script-src" not in resp.headers["Content-Security-Policy"]
            assert resp.headers["Content-Security-Policy"].startswith("default-src 'none'")
            assert b"fraud" in resp.read()
        req = urllib.request.Request(server.url + "/", method="HEAD")
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.status == 200 and resp.read() == b""
        for method in ("POST", "PUT", "DELETE"):
            req = urllib.request.Request(server.url + "/models/fraud", method=method,
                                         data=b"{}" if method != "DELETE" else None)
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(req, timeout=5)
            assert err.value.code == 405 and err.value.headers["Allow"] == "GET, HEAD"
        with urllib.request.urlopen(server.url + "/status", timeout=5) as resp:
            assert json.loads(resp.read()) == {}
    finally:
        server.stop()


def test_columns_follow_the_promotion_pipeline() -> None:
    """Environments read left to right the way versions travel: the `from` chain first,
    then by name; the one order of the page's columns and of `status`."""
    from mlflow_gitops.core.model import Promotion
    from mlflow_gitops.planning.overview import pipeline

    state = desired(env("a-canary", "alias:champion", {}),
                    dataclasses.replace(env("live", "stage:Production", {}),
                                        promotion=Promotion(from_env="qa")),
                    env("qa", "stage:Staging", {}), env("zz-shadow", "alias:shadow", {}))
    assert [e.name for e in pipeline(state)] == ["a-canary", "qa", "zz-shadow", "live"]


def test_mlflow_ui_links_only_for_the_default_registry() -> None:
    """The --mlflow-ui-url is the default registry's UI: a model that lives on another
    registry gets no link to it, on the grid or on its page."""
    state = desired(env("production", "stage:Production", {"remote": 1}, registry="prod"),
                    commit=SHA)
    snaps = {"prod": live({"remote": {1: "Production"}}, registry="prod")}
    the_plan = plan(state, snaps)
    d = PageData(rows=tuple(environment_status(state, snaps, the_plan)), desired=state,
                 snapshots=snaps, plan=the_plan, last_seen_commit=SHA)
    page = Page(lambda: d, mlflow_ui_url="https://mlflow.example.com")
    for route in ("/", "/models/remote"):
        code, html = render(page, route)
        assert code == 200 and "mlflow.example.com" not in html
    assert "in registry prod" in render(page, "/models/remote")[1]


def test_a_slow_first_history_read_does_not_hold_the_model_page() -> None:
    """While the history of a new commit is read in the background, a model page answers
    within `history_wait` and says so; once read, the timeline is there."""
    import threading
    import time

    gate = threading.Event()

    class Slow(History):
        def file_history(self, *args: object, **kwargs: object) -> list[Revision]:
            gate.wait(10)
            return super().file_history(*args, **kwargs)  # type: ignore[arg-type]

    page = Page(lambda: data({"fraud": (2, 3)}), history=Slow(), clock=lambda: NOW,
                history_wait=0.2)
    started = time.monotonic()
    code, html = render(page, "/models/fraud")
    assert code == 200 and time.monotonic() - started < 5
    assert "still being read" in html and "<svg" not in html
    gate.set()
    deadline = time.monotonic() + 10
    while "<svg" not in html and time.monotonic() < deadline:
        time.sleep(0.05)
        html = render(page, "/models/fraud")[1]
    assert "<svg" in html


def test_a_drift_repair_is_marked_and_not_credited_to_a_commit() -> None:
    """A self-heal repair in Recent changes carries a drift marker and says it restores the
    commit's state (it was not caused by that commit); a change from git has no marker."""
    recent = (ApplyRecord(NOW, "production", "fraud", 2, "set_alias", SHA, "fraud @champion: "
                          "v1 → v2", reason="drift"),
              ApplyRecord(NOW, "staging", "fraud", 3, "promote", SHA, "fraud v3: None → "
                          "Staging"))
    _, html = render(Page(lambda: data(recent=recent)), "/")
    healed, merged = html.split('<tr data-reason="drift">')[1], html.split(
        '<tr data-reason="git">')[1]
    assert "drift repaired (self-heal)" in healed.split("</tr>")[0]
    assert "restores" in healed.split("</tr>")[0]
    assert "drift repaired" not in merged.split("</tr>")[0]
    assert "restores" not in merged.split("</tr>")[0]


def test_up_to_date_only_when_every_entry_has_converged() -> None:
    """The branch tip applied but entries Waiting or in Error: the card says how many have
    not converged, never 'up to date with the branch'."""
    _, html = render(Page(lambda: data()), "/")  # staging wants v3, live has v1: pending
    assert "up to date with the branch" not in html and "not converged (see below)" in html
    _, html = render(Page(lambda: data({"fraud": (2, 1)})), "/")
    assert "up to date with the branch" in html


def test_reasons_wrap_instead_of_being_cut() -> None:
    """A cell's reason is shown whole (wrapped), never cut with an ellipsis."""
    _, html = render(Page(lambda: data()), "/")
    rule = re.search(r"\.msg \{[^}]*\}", html)
    assert rule is not None and "ellipsis" not in rule.group(0) \
        and "nowrap" not in rule.group(0)


def test_the_gate_table_shows_a_wait_with_its_time_not_a_failure() -> None:
    """On a model's page a soak gate that time alone passes reads 'wait … until', not FAIL."""
    from mlflow_gitops.core.plan import GateResult, ModelError, Plan

    until = (NOW + timedelta(hours=1)).timestamp()
    waiting = ModelError("default", "production", "fraud", "waiting", "fraud v2 not promoted: "
                         "9s in staging < min_soak 1h", "environments/production.yaml", 10,
                         gates=(GateResult("min_soak 1h", False, "9s in staging", ">= 1h",
                                           until=until),), until=until)
    _, html = render(Page(lambda: data(plan=Plan(SHA, errors=(waiting,)))), "/models/fraud")
    assert '<span class="gate wait">wait</span> min_soak 1h' in html
    assert "FAIL" not in html and "— until" in html
