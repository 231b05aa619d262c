"""Verification after apply, end to end: the controller as a process, a real MLflow server,
a bare git remote, a REAL Prometheus server (Debian's `prometheus`) scraping an exporter the
test controls every second, and the stand-in GitHub of tests/support/fake_forge.py."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.controller_proc import ControllerProcess, start, wait_until
from tests.support.envfiles import HEADER
from tests.support.fake_forge import TOKEN, FakeForge
from tests.support.git_http import serve_git_http
from tests.support.gitrepos import bare_remote, git, merge_branch
from tests.support.prometheus import Exporter, PrometheusServer, available
from tests.support.registry_helpers import make_model
from tests.support.servers import free_port

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(available() is not None, reason=str(available()))]

QUERY = "max(model_error_ratio{model=\"{model}\",version=\"{version}\"})"


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    exporter = Exporter()
    exporter.set("model_error_ratio", 0.0, model="warmup", version="0")
    server = PrometheusServer(tmp_path_factory.mktemp("prometheus"), exporter).start()
    server.wait_for('model_error_ratio{model="warmup"}', timeout=30)
    yield server
    server.stop()
    exporter.close()


def _env(target: str, model: str, version: int, checks: str, extra: str = "",
         duration: str = "6s") -> str:
    return (HEADER + f"target:\n  alias: {target}\n{extra}"
            f"verify:\n  duration: {duration}\n  interval: 1s\n  failure_limit: 0\n"
            f"  checks:\n{checks}models:\n  {model}: {version}\n")


PROM_CHECK = f"    - source: monitoring\n      query: '{QUERY}'\n      max: 0.05\n"
HTTP_CHECK = "    - source: quality\n      path: $.result.error_rate\n      max: 0.05\n"
DOWN_CHECK = f"    - source: offline\n      query: '{QUERY}'\n      max: 0.05\n"


def _config(tmp_path: Path, prometheus: PrometheusServer, forge: FakeForge) -> Path:
    (tmp_path / "forge-token").write_text(TOKEN + "\n")
    config = tmp_path / "controller.yaml"
    config.write_text(
        "verification_sources:\n"
        f"  monitoring: {{prometheus: '{prometheus.url}'}}\n"
        f"  quality: {{http: 'http://{prometheus.exporter.target}/quality/{{model}}/"
        "{version}'}\n"
        f"  offline: {{prometheus: 'http://127.0.0.1:{free_port()}', timeout: 1}}\n"
        "commit_status:\n  provider: github\n  repository: acme/models\n"
        f"  api_url: {forge.url}/api/v3\n  token_file: {tmp_path / 'forge-token'}\n"
        "notifications:\n"
        f"  - url: {forge.url}/hooks/json\n    format: json\n"
        "    events: [verified, rolled_back, held]\n")
    return config


def _row(proc: ControllerProcess, env: str, model: str) -> dict[str, Any]:
    return next(r for r in proc.status()["environments"]
                if r["environment"] == env and r["model"] == model)


def _progress(client: Any, model: str, version: int, env: str) -> dict[str, Any] | None:
    raw = client.get_model_version(model, str(version)).tags.get(f"gitops.verify.{env}")
    return json.loads(raw) if raw else None


def test_a_failing_version_is_rolled_back_held_and_said_everywhere(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str, forge: FakeForge,
        prometheus: PrometheusServer, controllers: list[ControllerProcess]) -> None:  # noqa: F811
    """A healthy version is Verifying, then verified (evidence in the registry, `verified`
    sent); a version whose error ratio is above the bound is rolled back to the version it
    replaced within one interval plus one scrape of its first failing measurement, held with
    the measurement as the reason, RolledBack on /status, the page, the commit status
    (failure) and in a `rolled_back` notification, and one revert pull request is opened on
    the forge; the HTTP JSON source verifies too."""
    model, other = f"vf-{unique}", f"vh-{unique}"
    make_model(mlflow_client, model, 2)
    make_model(mlflow_client, other, 1)
    exporter = prometheus.exporter
    for m, v in ((model, "1"), (other, "1")):
        exporter.set("model_error_ratio", 0.01, model=m, version=v)
    exporter.set("model_error_ratio", 0.50, model=model, version="2")
    prometheus.wait_for(f'model_error_ratio{{model="{model}",version="2"}}')

    def files(version: int) -> dict[str, str]:
        return {"environments/production.yaml": _env("champion", model, version, PROM_CHECK),
                "environments/qa.yaml": _env("qa", other, 1, HTTP_CHECK)}

    bare, work = bare_remote(tmp_path, files(1))
    served = tmp_path / "http" / "acme" / "models.git"
    served.parent.mkdir(parents=True)
    shutil.move(str(bare), served)
    git(work, "remote", "set-url", "origin", str(served))
    with serve_git_http(served.parent.parent, TOKEN) as (root, _handler):
        _rolled_back(tmp_path, mlflow_client, model, other, work, forge, files, start(
            controllers, tmp_path, f"{root}/acme/models.git", mlflow_server.uri,
            "--config", str(_config(tmp_path, prometheus, forge)), "--git-token-file",
            str(tmp_path / "forge-token"), "--forge-api-url", f"{forge.url}/api/v3",
            interval=2))
    assert len(forge.pulls) == 1  # never a second pull request for the same failure
    reverted = git(served, "show", f"rollback/production/{model}:environments/production.yaml")
    assert f"  {model}: 1" in reverted


def _rolled_back(tmp_path: Path, mlflow_client: Any, model: str, other: str, work: Path,
                 forge: FakeForge, files: Any, proc: ControllerProcess) -> None:
    row = wait_until(lambda: _row(proc, "production", model)["sync"] == "Verifying"
                     and _row(proc, "production", model), timeout=30, message="Verifying")
    assert row["message"].startswith("verifying until ") and row["until"] > time.time()
    assert "Verifying" in proc.get("/")[1].decode()
    assert 'state="Verifying"} 1.0' in proc.metrics()
    wait_until(lambda: _row(proc, "production", model)["sync"] == "Synced", timeout=30,
               message="verified v1")
    verified = mlflow_client.get_model_version(model, "1").tags["gitops.verified.production"]
    assert json.loads(verified)["at"] > 0
    assert _progress(mlflow_client, model, 1, "production")["outcome"] == "verified"
    wait_until(lambda: _progress(mlflow_client, other, 1, "qa") is not None and
               _progress(mlflow_client, other, 1, "qa")["outcome"] == "verified",
               timeout=30, message="the HTTP JSON source verifies qa")

    sha = merge_branch(work, "promote-v2", files(2), "Promote v2")
    wait_until(lambda: mlflow_client.get_registered_model(model).aliases["champion"] == "2",
               timeout=30, message="v2 applied")
    applied_at = json.loads(wait_until(lambda: mlflow_client.get_model_version(
        model, "2").tags.get("gitops.applied.production"), message="the apply record"))["at"]
    wait_until(lambda: mlflow_client.get_registered_model(model).aliases["champion"] == "1",
               timeout=30, message="rolled back to v1")
    rolled_back_at = time.time()
    progress = _progress(mlflow_client, model, 2, "production")
    assert progress["outcome"] == "failed" and progress["replaced"] == 1
    # The first measurement is due one interval after the apply; it fails at once.
    assert progress["finished_at"] - applied_at <= 1.0 + 1.0 + 1.0  # interval + scrape + slack
    assert rolled_back_at - applied_at < 15
    hold = json.loads(mlflow_client.get_registered_model(model).tags[
        "gitops.hold.production"])
    assert hold["by"] == "mlflow-gitops verification"
    assert "= 0.5, above max 0.05" in hold["reason"] and "rolled back to v1" in hold["reason"]
    row = wait_until(lambda: _row(proc, "production", model)["sync"] == "RolledBack"
                     and _row(proc, "production", model), timeout=20, message="RolledBack")
    assert row["live"] == [1] and "release" in row["message"]
    assert "RolledBack" in proc.get("/")[1].decode()
    wait_until(lambda: [s["state"] for s in forge.statuses_for(sha, "mlflow-gitops/production")
                        ][-1:] == ["failure"], timeout=20, message="failure commit status")
    descriptions = [s["description"] for s in forge.statuses_for(sha, "mlflow-gitops/production")]
    assert "RolledBack" in descriptions[-1]
    assert any(d.startswith("Verifying until ") for d in descriptions), descriptions
    events = wait_until(lambda: [r["body"] for r in forge.received
                                 if r["path"] == "/hooks/json"
                                 and r["body"]["event"] == "rolled_back"], timeout=20,
                        message="rolled_back notification")
    assert len(events) == 1 and events[0]["model"] == model
    assert any(r["body"]["event"] == "verified" and r["body"]["model"] == model
               for r in forge.received if r["path"] == "/hooks/json")
    # Held: later passes neither re-apply v2 nor verify v1 again.
    passes = proc.passes()
    wait_until(lambda: proc.passes() >= passes + 2, message="two more passes")
    assert mlflow_client.get_registered_model(model).aliases["champion"] == "1"
    assert _progress(mlflow_client, model, 1, "production")["outcome"] == "skipped"
    pull = wait_until(lambda: forge.open_pulls(f"rollback/production/{model}"), timeout=30,
                      message="the revert pull request")[0]
    assert pull["title"] == f"Roll back {model} in production: v2 → v1 (verification failed)"
    assert "= 0.5, above max 0.05" in pull["body"]
    assert TOKEN not in proc.logs()


def test_restart_resumes_the_window_and_a_dead_source_leaves_it_unverified(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str, forge: FakeForge,
        prometheus: PrometheusServer, controllers: list[ControllerProcess]) -> None:  # noqa: F811
    """A kill -9 mid-window and a restart resume the same window (same start, counts carried
    on, never restarted); a source that is down for the whole window leaves the version
    unverified, neither verified nor rolled back, and says so."""
    model, dark = f"vr-{unique}", f"vd-{unique}"
    make_model(mlflow_client, model, 1)
    make_model(mlflow_client, dark, 1)
    prometheus.exporter.set("model_error_ratio", 0.0, model=model, version="1")
    prometheus.wait_for(f'model_error_ratio{{model="{model}"}}')
    files = {"environments/production.yaml": _env("champion", model, 1, PROM_CHECK,
                                                  duration="8s"),
             "environments/canary.yaml": _env("canary", dark, 1, DOWN_CHECK, duration="4s")}
    bare, _ = bare_remote(tmp_path, files)
    config = _config(tmp_path, prometheus, forge)
    proc = start(controllers, tmp_path, f"file://{bare}", mlflow_server.uri,
                 "--config", str(config), interval=30)
    first = wait_until(lambda: (p := _progress(mlflow_client, model, 1, "production"))
                       and p["passed"] >= 2 and p, timeout=30, message="two measurements")
    proc.kill()
    time.sleep(1.5)
    again = start(controllers, tmp_path, f"file://{bare}", mlflow_server.uri,
                  "--config", str(config), interval=30)
    done = wait_until(lambda: (p := _progress(mlflow_client, model, 1, "production"))
                      and p["outcome"] != "running" and p, timeout=30, message="window end")
    assert done["started"] == first["started"] and done["ends"] == first["ends"]
    assert done["outcome"] == "verified" and done["passed"] > first["passed"]
    assert done["passed"] + done["inconclusive"] <= 8
    dark_done = wait_until(lambda: (p := _progress(mlflow_client, dark, 1, "canary"))
                           and p["outcome"] != "running" and p, timeout=30,
                           message="dark window end")
    assert dark_done["outcome"] == "unverified" and dark_done["passed"] == 0
    assert "source down" in dark_done["last"]
    tags = mlflow_client.get_model_version(dark, "1").tags
    assert "gitops.verified.canary" not in tags
    assert "gitops.hold.canary" not in mlflow_client.get_registered_model(dark).tags
    assert wait_until(lambda: _row(again, "canary", dark)["message"].startswith("unverified: "),
                      message="/status says unverified")
    assert mlflow_client.get_registered_model(dark).aliases["canary"] == "1"
    assert "unverified: no conclusive measurement" in again.logs()
