"""The read-only web page of a running controller, as headless Chromium renders it: every
environment and model with its state, a model's versions and timeline, hostile names
escaped."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.support import chromium
from tests.support.cli import run_cli
from tests.support.controller_proc import ControllerProcess, wait_until
from tests.support.envfiles import HEADER
from tests.support.gitrepos import bare_remote, merge_branch
from tests.support.registry_helpers import make_model, stages_of

pytestmark = pytest.mark.slow

#: The most hostile name MLflow accepts: it refuses only "/" and ":" (and ".." paths).
HOSTILE = "<img src=x onerror=alert(1)> \"q\" & 'co' #?%2e"


def files(models: dict[str, tuple[int, int]]) -> dict[str, str]:
    """environments/{production,staging}.yaml listing `models` (name → (prod, staging))."""
    def body(stage: str, index: int) -> str:
        lines = "".join(f"  {json.dumps(m)}: {v[index]}\n" for m, v in models.items())
        return HEADER + f"target:\n  stage: {stage}\nmodels:\n{lines}"
    return {"environments/production.yaml": body("Production", 0),
            "environments/staging.yaml": body("Staging", 1)}


@pytest.fixture()
def controller(tmp_path: Path) -> Iterator[list[ControllerProcess]]:
    started: list[ControllerProcess] = []
    yield started
    for proc in started:
        proc.kill()


def test_page_shows_every_environment_and_model_with_its_state_in_chromium(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str,
        controller: list[ControllerProcess]) -> None:
    """After a few merged commits, `/` in Chromium shows each (environment, model) with the
    state /status reports, a hostile model name as escaped text, the applied changes, the
    delivery table from the ledger, and `/models/<name>` shows the versions and a timeline
    with one bar per applied assignment."""
    chromium.require()
    fraud, churn, ghost = f"fraud-{unique}", f"churn-{unique}", f"ghost-{unique}"
    hostile = f"{HOSTILE} {unique}"
    for name, count in ((fraud, 3), (churn, 2), (hostile, 2), (ghost, 1)):
        make_model(mlflow_client, name, count)
    models = {fraud: (1, 2), churn: (1, 2), hostile: (1, 2)}
    bare, work = bare_remote(tmp_path, files(models))
    proc = ControllerProcess(tmp_path, f"file://{bare}", mlflow_server.uri, interval=1,
                             ).start()
    controller.append(proc)
    # The merges come after the first sync, so the page's recent changes show a promotion
    # out of Staging (a first sync that already saw them would promote from None).
    wait_until(lambda: stages_of(mlflow_client, fraud) == {1: "Production", 2: "Staging",
                                                           3: "None"}, message="first sync")

    sha = merge_branch(work, "promote-fraud", files({**models, fraud: (2, 3)}),
                       f"Promote {fraud} v2")
    sha = merge_branch(work, "add-ghost", files({**models, fraud: (2, 3), ghost: (1, 5)}),
                       f"Add {ghost}")
    wait_until(lambda: proc.status()["last_seen_commit"] == sha and {
        (r["environment"], r["model"]) for r in proc.status()["environments"]} >= {
        ("staging", ghost), ("production", fraud)}, timeout=30, message="both merges read")
    wait_until(lambda: proc.status()["last_applied_commit"] == sha, message="applied")
    rows = proc.status()["environments"]
    state = {(r["model"], r["environment"]): r["sync"] for r in rows}
    assert state[(fraud, "production")] == "Synced"
    assert state[(ghost, "staging")] == "Error"  # v5 does not exist

    dom = chromium.Dom(chromium.dump_dom(proc.url + "/"))
    assert dom.cells == state  # every environment × model, with the state /status reports
    assert [a["data-env"] for a in dom.find("th") if a.get("data-env")] == [
        "production", "staging"]  # no promotion.from here: by name, as `status` prints them
    assert dom.tags.get("img", 0) == 0 and dom.tags.get("script", 0) == 0
    assert f"{hostile}" in dom.text  # shown as text, exactly
    assert {"href": "/models/" + quote(hostile, safe="")} in dom.find("a")
    assert any(f"{fraud} v2: Staging → Production" in t for t in dom.text)
    assert dom.find("table", id="delivery"), "the delivery table, from the ledger"
    assert 'mlflow_gitops_deployments{environment="production"}' in proc.metrics()
    shot = chromium.screenshot(proc.url + "/", tmp_path / "page.png")
    assert shot.stat().st_size > 10_000

    model_url = proc.url + "/models/" + quote(fraud, safe="")
    page = wait_until(lambda: (lambda d: d if d.find("g", **{"class": "segment"}) else None)(
        chromium.Dom(chromium.dump_dom(model_url))), timeout=60,
        message="the timeline (its history is read once per commit, in the background)")
    assert [a["data-version"] for a in page.find("tr") if a.get("data-version")] == [
        "3", "2", "1"]
    bars = [(a["data-env"], a["data-version"]) for a in page.find("g", **{"class": "segment"})]
    assert bars == [("production", "1"), ("production", "2"), ("staging", "2"),
                    ("staging", "3")]
    assert {(a["data-env"], a["data-state"]) for a in page.find("div", **{"class": "card"})
            } == {("production", "Synced"), ("staging", "Synced")}
    chromium.screenshot(model_url, tmp_path / "model.png")

    bad = chromium.Dom(chromium.dump_dom(proc.url + "/models/" + quote(hostile, safe="")))
    assert bad.tags.get("img", 0) == 0 and hostile in bad.text
    assert proc.terminate() == 0


def test_history_svg_draws_the_timeline_from_first_parent_history(tmp_path: Path) -> None:
    """`history MODEL --output svg` writes well-formed SVG with one bar per version that
    held each environment, merged pull requests dated by their merge; a model never
    assigned is one error line and exit 1."""
    model = "fraud & <co>"
    _, work = bare_remote(tmp_path, files({model: (1, 2)}))
    merge_branch(work, "v2", files({model: (2, 3)}), "Promote v2")
    merge_branch(work, "v3", files({model: (3, 4)}), "Promote v3")
    out = run_cli("history", model, "--output", "svg", cwd=work)
    assert out.code == 0, out.err
    root = ET.fromstring(out.out)
    bars = [(g.get("data-env"), g.get("data-version"))
            for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("class") == "segment"]
    assert bars == [("production", "1"), ("production", "2"), ("production", "3"),
                    ("staging", "2"), ("staging", "3"), ("staging", "4")]  # in the page's order
    only = run_cli("history", model, "--env", "staging", "-o", "svg", cwd=work)
    assert only.code == 0 and "production" not in only.out
    missing = run_cli("history", "nobody", "-o", "svg", cwd=work)
    assert missing.code == 1 and missing.err.count("\n") == 1 and "never assigned" in missing.err


def test_run_refuses_an_mlflow_ui_url_with_credentials_before_starting(tmp_path: Path) -> None:
    """`run --mlflow-ui-url` with a password in it exits 1 with one line that does not
    repeat the password, before touching git or the registry."""
    out = run_cli("run", "--repo-url", f"file://{tmp_path}/none.git", "--cache-dir",
                  str(tmp_path / "cache"), "--listen", "127.0.0.1:0", "--mlflow-ui-url",
                  "https://admin:hunter2@mlflow.example.com", timeout=60,
                  env={"MLFLOW_TRACKING_URI": "http://127.0.0.1:9"})
    assert out.code == 1 and out.err.count("\n") == 1
    assert "credentials" in out.err and "hunter2" not in out.err
