"""`make screenshot`: regenerate the README's pictures of the web page from real parts.

A local MLflow server, a bare git repository with two weeks of (back-dated) merged pull
requests, and the controller running against both; then headless Chromium photographs `/`
and one model's page into docs/. Nothing is mocked: what the picture shows is what the
controller serves."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support import chromium  # noqa: E402
from tests.support.servers import MlflowServer, free_port  # noqa: E402

WORK = ROOT / ".screenshot"
DOCS = ROOT / "docs"
HEADER = "apiVersion: mlflow-gitops/v1\nkind: Environment\n"
#: model → accuracy of each version's source run (v1 first).
MODELS = {"fraud-detector": (0.91, 0.93, 0.94, 0.95, 0.88),
          "churn-model": (0.91, 0.92, 0.93, 0.94), "recommender": (0.90, 0.92, 0.93, 0.94),
          "search-ranker": (0.95, 0.96, 0.97), "price-forecast": (0.93, 0.94)}
TARGETS = {"staging": "  stage: Staging\n",
           "production": "  stage: Production\npromotion:\n  gates:\n    - metric: accuracy\n"
                         "      min: 0.9\n",
           "canary": "  alias: champion\nsync:\n  self_heal: false\n"}
PEOPLE = ("Ada Lovelace <ada@example.com>", "Grace Hopper <grace@example.com>",
          "Alan Turing <alan@example.com>")


def git(cwd: Path, *args: str, when: datetime | None = None, who: str = PEOPLE[0]) -> str:
    name, email = who[:-1].split(" <")
    env = {**os.environ, "GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email,
           "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email}
    if when is not None:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = when.isoformat()
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


def write(work: Path, state: dict[str, dict[str, int]]) -> None:
    for env, target in TARGETS.items():
        models = "".join(f"  {m}: {v}\n" for m, v in sorted(state[env].items()))
        (work / "environments" / f"{env}.yaml").write_text(
            HEADER + f"target:\n{target}models:\n{models}")


def merge(work: Path, state: dict[str, dict[str, int]], title: str, when: datetime,
          who: str, number: int) -> None:
    """A pull request: a branch with the change, merged into main with a merge commit."""
    branch = f"pr-{number}"
    git(work, "checkout", "-q", "-b", branch)
    write(work, state)
    git(work, "commit", "-qam", title, when=when - timedelta(hours=2), who=who)
    git(work, "checkout", "-q", "main")
    git(work, "merge", "-q", "--no-ff", branch, "-m", f"Merge pull request #{number}: {title}",
        when=when, who=PEOPLE[1])


def history(work: Path, now: datetime) -> None:
    """Two weeks of promotions, a rollback, and today's changes (some refused or broken)."""
    state = {"staging": {"fraud-detector": 2, "churn-model": 2, "recommender": 2,
                         "search-ranker": 2, "price-forecast": 2},
             "production": {"fraud-detector": 1, "churn-model": 1, "recommender": 1,
                            "price-forecast": 1},
             "canary": {"fraud-detector": 1}}
    (work / "environments").mkdir()
    write(work, state)
    git(work, "add", "-A")
    git(work, "commit", "-qm", "Environments for the fraud, churn and ranking models",
        when=now - timedelta(days=14))
    steps = [
        (12, "Stage fraud-detector v3", {"staging": {"fraud-detector": 3}}),
        (10, "Promote fraud-detector v2 to production",
         {"production": {"fraud-detector": 2}, "canary": {"fraud-detector": 2}}),
        (8, "Stage recommender v3 and churn-model v3",
         {"staging": {"recommender": 3, "churn-model": 3}}),
        (6, "Promote recommender v2 to production", {"production": {"recommender": 2}}),
        (5, "Promote churn-model v2 to production", {"production": {"churn-model": 2}}),
        (3, "Promote recommender v3 to production, stage v4",
         {"production": {"recommender": 3}, "staging": {"recommender": 4}}),
        (2, "Roll back recommender to v2: CTR dropped", {"production": {"recommender": 2}}),
        (1.5, "Promote fraud-detector v3 to production and canary, stage v4",
         {"production": {"fraud-detector": 3}, "canary": {"fraud-detector": 3},
          "staging": {"fraud-detector": 4}}),
        (1, "Stage churn-model v4", {"staging": {"churn-model": 4}}),
    ]
    for n, (days, title, change) in enumerate(steps, start=1):
        for env, models in change.items():
            state[env].update(models)
        merge(work, state, title, now - timedelta(days=days), PEOPLE[n % len(PEOPLE)], n)


def main() -> None:
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    if not Path(chromium.CHROMIUM).exists() and not shutil.which("chromium"):
        raise SystemExit("make screenshot: chromium is not installed (apt-get install -y "
                         "chromium)")
    from mlflow import MlflowClient

    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir()
    server = MlflowServer(WORK / "mlflow").start()
    controller = None
    try:
        client = MlflowClient(server.uri, server.uri)
        experiment = client.create_experiment("models")
        for model, accuracies in MODELS.items():
            client.create_registered_model(model)
            for n, accuracy in enumerate(accuracies, start=1):
                run = client.create_run(experiment)
                client.log_metric(run.info.run_id, "accuracy", accuracy)
                client.set_terminated(run.info.run_id)
                client.create_model_version(model, source=f"s3://models/{model}/{n}",
                                            run_id=run.info.run_id)
        now = datetime.now(timezone.utc)
        seed = WORK / "seed"
        seed.mkdir()
        git(seed, "init", "-q", "-b", "main")
        history(seed, now)
        remote = WORK / "environments.git"
        subprocess.run(["git", "clone", "-q", "--bare", str(seed), str(remote)], check=True)

        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = open(WORK / "controller.log", "w")  # noqa: SIM115 - closed with the process
        controller = subprocess.Popen(
            [sys.executable, "-m", "mlflow_gitops.cli", "run", "--repo-url", SHOWN_URL,
             "--interval", "1", "--listen", f"127.0.0.1:{port}", "--cache-dir",
             str(WORK / "cache"), "--mlflow-ui-url", server.uri],
            stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "MLFLOW_TRACKING_URI": server.uri, **_rewrite(remote)})

        def status() -> dict[str, object]:
            with urllib.request.urlopen(url + "/status", timeout=2) as r:
                return json.loads(r.read())  # type: ignore[no-any-return]

        tip = git(seed, "rev-parse", "HEAD")
        wait(lambda: status()["last_applied_commit"] == tip, "the first sync")
        # Today: someone moves @champion by hand (canary does not self-heal: drift shows),
        # a pull request stages a version that does not exist, another one asks production
        # for a version whose accuracy fails the gate.
        client.set_registered_model_alias("fraud-detector", "champion", "1")
        work = WORK / "work"
        subprocess.run(["git", "clone", "-q", str(remote), str(work)], check=True)
        state = {"staging": {"fraud-detector": 4, "churn-model": 4, "recommender": 4,
                             "search-ranker": 7, "price-forecast": 2},
                 "production": {"fraud-detector": 5, "churn-model": 2, "recommender": 2,
                                "price-forecast": 1},
                 "canary": {"fraud-detector": 3}}
        merge(work, state, "Promote fraud-detector v5; stage search-ranker v7",
              datetime.now(timezone.utc), PEOPLE[2], 11)
        git(work, "push", "-q", "origin", "main")
        tip = git(work, "rev-parse", "HEAD")
        wait(lambda: status()["last_seen_commit"] == tip, "the last merge")
        time.sleep(1.5)  # one more pass, so /status settles after the manual alias move
        pages = {name: fetch(url + path) for name, path in
                 (("page", "/"), ("page-model", "/models/fraud-detector"))}
    finally:
        if controller is not None:
            controller.terminate()
            controller.wait(timeout=30)
        server.stop()
    # Photographed from the saved HTML once the servers are down: a busy machine can leave
    # Chromium's tiles half-painted when the screenshot is taken.
    DOCS.mkdir(exist_ok=True)
    for name, size in (("page", "1400,860"), ("page-model", "1400,1100")):
        html = WORK / f"{name}.html"
        html.write_bytes(pages[name])
        chromium.screenshot(html.as_uri(), DOCS / f"{name}.png", size=size)
        print(f"wrote docs/{name}.png ({(DOCS / f'{name}.png').stat().st_size // 1024} KB)")


#: The repository URL the pictures show: git rewrites it to the local bare repository (its
#: `url.<base>.insteadOf`), so no path of the machine that made them appears on the page.
SHOWN_URL = "https://github.com/acme/ml-environments.git"


def _rewrite(remote: Path) -> dict[str, str]:
    """Git configuration, through the environment, that fetches SHOWN_URL from `remote`."""
    return {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": f"url.file://{remote}.insteadOf",
            "GIT_CONFIG_VALUE_0": SHOWN_URL}


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()  # type: ignore[no-any-return]


def wait(predicate, what: str, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"make screenshot: timed out waiting for {what}; see "
                     f"{WORK / 'controller.log'}")


if __name__ == "__main__":
    main()
