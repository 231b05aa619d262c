"""The page shows prompts apart from models: an environments × prompts grid."""

from __future__ import annotations

import dataclasses
from html.parser import HTMLParser

from mlflow_gitops.adapters.page import Page
from mlflow_gitops.core.model import PROMPT_TAG, ModelEntry, frozen_map
from mlflow_gitops.planning import overview
from mlflow_gitops.planning.overview import PageData
from mlflow_gitops.planning.planner import plan
from mlflow_gitops.planning.status import environment_status

from tests.support.builders import desired, env, live

SHA = "b" * 40


class Grids(HTMLParser):
    """Each grid as the browser sees it: table id → {(row name, environment): state}."""

    def __init__(self) -> None:
        super().__init__()
        self.table = ""
        self.name: str | None = None
        self.grids: dict[str, dict[tuple[str, str], str]] = {}
        self.headers: dict[str, list[str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table":
            self.table = a.get("id") or ""
        if tag == "th" and "data-env" in a:
            self.headers.setdefault(self.table, []).append(a["data-env"] or "")
        if tag == "tr":
            self.name = a.get("data-model") or a.get("data-prompt")
        if tag == "td" and "data-state" in a and self.name is not None:
            grid = self.grids.setdefault(self.table, {})
            grid[(self.name, a["data-env"] or "")] = a["data-state"] or ""


def page_data() -> PageData:
    """production (stage) lists fraud; champion (alias) lists fraud and the prompt
    summarizer at v2 while its alias is on v1 (OutOfSync), and the prompt greeter (Synced)."""
    champion = env("champion", "alias:champion", {"fraud": 2})
    champion = dataclasses.replace(champion, models=frozen_map({
        **champion.models,
        "summarizer": ModelEntry(2, line=12, kind="prompt"),
        "greeter": ModelEntry(1, line=13, kind="prompt")}))
    state = desired(env("production", "stage:Production", {"fraud": 1}), champion,
                    commit=SHA)
    snap = live({"fraud": {1: "Production", 2: "None"}, "summarizer": {1: "None", 2: "None"},
                 "greeter": {1: "None"}},
                aliases={"fraud": {"champion": 2}, "summarizer": {"champion": 1},
                         "greeter": {"champion": 1}},
                model_tags={"summarizer": {PROMPT_TAG: "true"}, "greeter": {PROMPT_TAG: "true"}})
    the_plan = plan(state, {"default": snap})
    rows = tuple(environment_status(state, {"default": snap}, the_plan))
    return PageData(rows=rows, desired=state, snapshots={"default": snap}, plan=the_plan,
                    last_seen_commit=SHA, last_applied_commit=SHA)


def test_prompts_have_their_own_grid_with_desired_live_and_state() -> None:
    """Prompts are rows of the prompts grid only, whose columns are the environments that
    list prompts; each cell says desired, live and the state; models stay in their grid."""
    data = page_data()
    code, body, _ = Page(lambda: data).render("/")
    html = body.decode()
    parsed = Grids()
    parsed.feed(html)
    assert code == 200
    assert parsed.grids["grid"] == {("fraud", "production"): "Synced",
                                    ("fraud", "champion"): "Synced"}
    assert parsed.grids["prompt-grid"] == {("summarizer", "champion"): "OutOfSync",
                                           ("greeter", "champion"): "Synced"}
    assert parsed.headers["prompt-grid"] == ["champion"]
    assert "desired <b>v2</b> · live <b>v1</b>" in html.split('id="prompt-grid"')[1]
    assert "2 assignments; 2 prompts below" in html


def test_prompt_links_open_the_prompt_in_the_mlflow_ui() -> None:
    """A prompt's MLflow link is MLflow's prompt page, and its own page is marked a prompt."""
    data = page_data()
    page = Page(lambda: data, mlflow_ui_url="http://mlflow.example:5000")
    html = page.render("/")[1].decode()
    assert 'href="http://mlflow.example:5000/#/prompts/summarizer"' in html
    assert 'href="http://mlflow.example:5000/#/models/summarizer"' not in html
    code, body, _ = page.render("/models/summarizer")
    assert code == 200
    assert 'id="kind">prompt<' in body.decode()
    assert "#/prompts/summarizer" in body.decode()
    assert 'id="kind"' not in page.render("/models/fraud")[1].decode()


def test_grid_by_kind_keeps_environments_without_entries_as_model_columns() -> None:
    """An environment listing nothing is a models column, never a prompts column."""
    data = page_data()
    empty = env("dev", "alias:dev", {})
    state = dataclasses.replace(data.desired, environments=(*data.desired.environments, empty))
    columns, _ = overview.grid(data.rows, state, "model")
    prompt_columns, _ = overview.grid(data.rows, state, "prompt")
    assert [c.environment for c in columns] == ["champion", "dev", "production"]
    assert [c.environment for c in prompt_columns] == ["champion"]
