"""`make demo`: the whole story on one machine, with real parts only.

A local MLflow server (SQLite), a bare git repository standing in for GitHub, and the
controller running against it. A promotion branch is opened with `mlflow-gitops promote`,
merged, and the registry follows; the merge is reverted, and the registry rolls back. Last,
production gains a live check (`verify:`) against a small quality service the demo serves:
a promotion whose error rate is too high is rolled back by the controller itself."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.servers import MlflowServer, free_port  # noqa: E402

WORK = ROOT / ".demo"
MODEL = "fraud-detector"
SECRET = "demo-webhook-secret"
ACCURACY = {1: 0.91, 2: 0.93, 3: 0.88}
SOAK = "5s"  # production.yaml's min_soak, shortened from 1h so the demo need not wait
ERROR_RATE = {1: 0.004, 2: 0.31, 3: 0.01}  # what the demo's quality service reports live
VERIFY = ("verify:                  # check each promotion live for 20s, rollback on failure\n"
          "  duration: 20s\n  interval: 2s\n  checks:\n    - source: quality\n"
          "      path: $.error_rate\n      max: 0.02\n")


class Quality(BaseHTTPRequestHandler):
    """A stand-in for a model-quality service: GET /quality/<model>/<version> answers
    {"error_rate": x}, the number production's `verify:` check reads."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        pass

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        version = self.path.rstrip("/").rsplit("/", 1)[-1]
        rate = ERROR_RATE.get(int(version)) if version.isdigit() else None
        body = json.dumps({"error_rate": rate}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def say(text: str) -> None:
    print(f"\n\033[1m==> {text}\033[0m", flush=True)


def git(cwd: Path, *args: str, when: datetime | None = None) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "Demo User", "GIT_AUTHOR_EMAIL": "demo@example.com",
           "GIT_COMMITTER_NAME": "Demo User", "GIT_COMMITTER_EMAIL": "demo@example.com"}
    if when is not None:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = when.isoformat()
    out = subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True,
                         text=True)
    return out.stdout.strip()


def cli(*args: str, cwd: Path, env: dict[str, str]) -> None:
    print(f"$ mlflow-gitops {' '.join(args)}", flush=True)
    subprocess.run([sys.executable, "-m", "mlflow_gitops.cli", *args], cwd=cwd,
                   env={**os.environ, **env}, check=True)


def show_registry(client: object) -> None:
    versions = sorted(client.search_model_versions(f"name = '{MODEL}'"),  # type: ignore[attr-defined]
                      key=lambda mv: int(mv.version))
    aliases = client.get_registered_model(MODEL).aliases  # type: ignore[attr-defined]
    print(f"   {'version':<8}{'stage':<12}{'aliases':<12}{'accuracy':<10}set by")
    for mv in versions:
        held = ", ".join(f"@{a}" for a, v in aliases.items() if v == mv.version) or "-"
        lineage = ", ".join(f"{k.split('.', 2)[2]}@{v[:8]}" for k, v in sorted(mv.tags.items())
                            if k.startswith("gitops.env.")) or "-"
        print(f"   v{mv.version:<7}{mv.current_stage:<12}{held:<12}"
              f"{ACCURACY[int(mv.version)]:<10}{lineage}")


def wait_for(predicate, what: str, timeout: float = 30) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise SystemExit(f"demo: timed out waiting for {what}")


def webhook(port: int, quiet: bool = False) -> None:
    body = b'{"ref": "refs/heads/main"}'
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/webhook", data=body, method="POST",
        headers={"X-Hub-Signature-256": f"sha256={signature}", "X-GitHub-Event": "push",
                 "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        if not quiet:
            print(f"   POST /webhook (signed like GitHub) → {response.status}")


def main() -> None:
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    from mlflow import MlflowClient

    logging.getLogger("mlflow").setLevel(logging.WARNING)

    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir()
    say("Starting a local MLflow tracking server (SQLite, one worker)")
    server = MlflowServer(WORK / "mlflow").start()
    controller = None
    try:
        print(f"   {server.uri}")
        client = MlflowClient(server.uri, server.uri)
        say(f"Registering '{MODEL}' with three versions, each from a run with its accuracy")
        experiment = client.create_experiment("fraud")
        client.create_registered_model(MODEL)
        for version, accuracy in ACCURACY.items():
            run = client.create_run(experiment)
            client.log_metric(run.info.run_id, "accuracy", accuracy)
            client.set_terminated(run.info.run_id)
            client.create_model_version(MODEL, source=f"s3://models/fraud/{version}",
                                        run_id=run.info.run_id)
        show_registry(client)

        say("Creating the environments repository (a bare repo stands in for GitHub)")
        seed = WORK / "seed"
        (seed / "environments").mkdir(parents=True)
        git(seed, "init", "-q", "-b", "main")
        staging = (ROOT / "environments" / "staging.yaml").read_text()
        (seed / "environments" / "staging.yaml").write_text(
            staging.replace(f"{MODEL}: 2", f"{MODEL}: 1"))
        git(seed, "add", "-A")
        # A commit date says nothing to the promotion policy: only what the controller
        # applied, and when by its own clock, counts (docs/promotion-policy.md).
        git(seed, "commit", "-q", "-m", "Stage fraud-detector v1",
            when=datetime.now(timezone.utc) - timedelta(days=3))
        remote = WORK / "environments.git"
        subprocess.run(["git", "clone", "-q", "--bare", str(seed), str(remote)], check=True)
        work = WORK / "work"
        subprocess.run(["git", "clone", "-q", str(remote), str(work)], check=True)
        git(work, "config", "user.name", "Demo User")
        git(work, "config", "user.email", "demo@example.com")
        print(f"   remote {remote}: staging.yaml stages v1 (a commit dated 3 days ago)")

        say("Starting the controller: mlflow-gitops run --repo-url file://… --interval 30")
        (WORK / "webhook-secret").write_text(SECRET)
        quality = ThreadingHTTPServer(("127.0.0.1", 0), Quality)
        threading.Thread(target=quality.serve_forever, daemon=True).start()
        (WORK / "controller.yaml").write_text(
            "verification_sources:       # where verify: checks may look (never in git)\n"
            f"  quality: {{http: 'http://127.0.0.1:{quality.server_address[1]}"
            "/quality/{model}/{version}'}\n")
        port = free_port()
        env = {"MLFLOW_TRACKING_URI": server.uri}
        log = open(WORK / "controller.log", "w")  # noqa: SIM115 - closed in finally
        controller = subprocess.Popen(
            [sys.executable, "-m", "mlflow_gitops.cli", "run", "--repo-url", f"file://{remote}",
             "--interval", "30", "--listen", f"127.0.0.1:{port}",
             "--cache-dir", str(WORK / "cache"), "--webhook-secret-file",
             str(WORK / "webhook-secret"), "--config", str(WORK / "controller.yaml")],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env})

        def status() -> dict:  # type: ignore[type-arg]
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=2) as r:
                return json.loads(r.read())  # type: ignore[no-any-return]

        def synced(sha: str) -> bool:
            try:
                s = status()
            except OSError:
                return False
            return s["last_applied_commit"] == sha and all(
                row["sync"] == "Synced" for row in s["environments"])

        main_sha = git(work, "rev-parse", "HEAD")
        wait_for(lambda: synced(main_sha), "the first sync")
        print("   first sync done: v1 entered staging now (the controller records when),")
        print("   however old the commit says it is")
        show_registry(client)

        def publish(what: str, outcome: str) -> None:
            """Push main, tell the controller by webhook, wait until it has applied it (a
            promotion still soaking waits; another webhook retries it once it has)."""
            git(work, "push", "-q", "origin", "main")
            sha = git(work, "rev-parse", "HEAD")
            webhook(port)
            deadline = time.monotonic() + 60
            while not synced(sha):
                if time.monotonic() > deadline:
                    raise SystemExit(f"demo: timed out waiting for the {what} to be applied")
                time.sleep(2)
                webhook(port, quiet=True)
            print(f"   applied {what} {sha[:12]}: {outcome}")
            show_registry(client)

        say(f"Promoting v1 to production with the example environments (min_soak {SOAK} "
            "here, 1h in environments/)")
        for path in (ROOT / "environments").iterdir():
            text = path.read_text()
            if path.name == "production.yaml":  # shipped with no models: v1 serves here
                text = text.replace("min_soak: 1h ", f"min_soak: {SOAK}").replace(
                    "models: {}", f"models:\n  {MODEL}: 1")
            (work / "environments" / path.name).write_text(text)
        git(work, "add", "-A")
        git(work, "commit", "-q", "-m", "Promote v1 to production, stage v2")
        publish("promotion", f"v1 waited until it had soaked {SOAK} in staging, then moved")

        say("Promoting v2 to production: a branch, and the plan a reviewer would see")
        cli("promote", MODEL, "2", "--env", "production", "--push",
            cwd=work, env=env)

        say("Reviewer approves; merging the pull request into main")

        git(work, "merge", "-q", "--no-ff", f"promote/{MODEL}-v2-to-production",
            "-m", "Merge pull request #1: promote fraud-detector v2")
        publish("merge", "v2 serves in Production")

        say("Something is wrong with v2: reverting the merge rolls it back")
        git(work, "revert", "--no-edit", "-m", "1", "HEAD")
        publish("revert", "v1 serves again, v2 is back in Staging")

        say("Closing the loop: production checks each promotion live (verify:), and v2 is "
            "merged again")
        production = work / "environments" / "production.yaml"
        production.write_text(production.read_text().replace("models:", VERIFY + "models:")
                              .replace(f"{MODEL}: 1", f"{MODEL}: 2"))
        staging_file = work / "environments" / "staging.yaml"  # v2 leaves staging: one stage
        staging_file.write_text(staging_file.read_text().replace(f"{MODEL}: 2", f"{MODEL}: 3"))
        print("   verify: the quality service's error_rate for the version must stay <= 0.02;")
        print(f"   it reports {ERROR_RATE[2]} for v2")
        git(work, "commit", "-q", "-am", "Promote v2 to production again with a live check; "
            "stage v3")
        git(work, "push", "-q", "origin", "main")
        webhook(port)

        def production_row() -> dict:  # type: ignore[type-arg]
            return next(r for r in status()["environments"]
                        if r["environment"] == "production" and r["model"] == MODEL)

        wait_for(lambda: production_row()["sync"] in ("Verifying", "RolledBack"),
                 "v2 to be applied and verified")
        row = production_row()
        if row["sync"] == "Verifying":
            print(f"   Verifying: {row['message'][:100]}")
        wait_for(lambda: production_row()["sync"] == "RolledBack", "the automatic rollback")
        row = production_row()
        print(f"   RolledBack by the controller itself: {row['message'][:160]}…")
        show_registry(client)
        print("   the entry is held until a commit sets v1 again (the revert pull request,")
        print("   opened when a forge is configured) and someone runs")
        print(f"   mlflow-gitops release {MODEL} --env production (docs/verification.md)")

        say("The audit trail is the git log")
        cli("history", MODEL, cwd=work, env=env)
        say("Done. Controller log: .demo/controller.log")
    finally:
        if "quality" in locals():
            quality.shutdown()
        if controller is not None:
            controller.terminate()
            controller.wait(timeout=30)
        server.stop()


if __name__ == "__main__":
    main()
