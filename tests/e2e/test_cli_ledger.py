"""The ledger's commands as processes against the real MLflow server: `apply` records each
change, `history --at` answers from applied times (backdated commits cannot move it),
`audit verify` names a deleted record and an applied change without a record, and `report`
gives hand-computed figures."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mlflow_gitops.adapters.mlflow.ledger import MlflowLedger
from mlflow_gitops.adapters.mlflow.registry import MlflowRegistry
from mlflow_gitops.core.ledger import Entry
from mlflow_gitops.loop.ledger import Ledger

from tests.support.cli import run_cli
from tests.support.gitrepos import git, init_repo, write_files
from tests.support.registry_helpers import make_model

H = 3_600_000


def alias_env(model: str, version: int) -> dict[str, str]:
    return {"environments/production.yaml": "apiVersion: mlflow-gitops/v1\nkind: Environment"
            f"\ntarget:\n  alias: champion\nmodels:\n  {model}: {version}\n"}


def config(tmp: Path, uri: str, experiment: str) -> str:
    path = tmp / "controller.yaml"
    path.write_text(f"registries:\n  default:\n    tracking_uri: {uri}\n"
                    f"ledger:\n  experiment: {experiment}\n")
    return str(path)


def iso(epoch: float) -> str:
    """To the millisecond: a whole second could fall before an apply made in that second."""
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds")


def test_history_at_answers_from_applied_times_and_audit_names_a_deleted_record(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str) -> None:
    """Two commits dated 2020 are applied now: --at in 2020 finds nothing live, --at between
    the applies finds v1, now finds v2 (merged by the commit's author); history shows merged
    and applied side by side; an apply record with no ledger record is named as a gap;
    deleting the first record makes audit verify exit 1 naming #1."""
    model = f"ledger-{unique}"
    make_model(mlflow_client, model, 2)
    repo = init_repo(tmp_path / "repo")
    cfg = config(tmp_path, mlflow_server.uri, f"ledger-{unique}")
    backdated = {"GIT_AUTHOR_DATE": "2020-01-01T00:00:00Z",
                 "GIT_COMMITTER_DATE": "2020-01-01T00:00:00Z"}
    write_files(repo, alias_env(model, 1))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "v1", env=backdated)
    assert run_cli("apply", "environments", "--config", cfg, cwd=repo).code == 0
    time.sleep(1.1)  # --at reads whole seconds: `between` must be a later second than v1's apply
    between = time.time()
    time.sleep(1.1)
    write_files(repo, alias_env(model, 2))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "v2", env={**backdated, "GIT_COMMITTER_DATE":
                                              "2020-06-01T00:00:00Z"})
    applied = run_cli("apply", "environments", "--config", cfg, cwd=repo)
    assert applied.code == 0, applied.err

    def at(when: str) -> Any:
        result = run_cli("history", model, "--env", "production", "--at", when, "--config",
                         cfg, "-o", "json", cwd=repo)
        assert result.code == 0, result.err
        return json.loads(result.out)

    assert at("2020-07-01T00:00:00Z")["versions"] == []
    assert at(iso(between))["versions"] == [1]
    now = at(iso(time.time() + 1))
    assert now["versions"] == [2]
    assert now["since"]["merged_by"] == "Ada Tester <ada@example.com>"
    text = run_cli("history", model, "--env", "production", "--at", "0s", "--config", cfg,
                   cwd=repo)
    assert f"{model} in production at" in text.out and ": v2 (live since" in text.out

    table = run_cli("history", model, "--env", "production", "--config", cfg, cwd=repo)
    assert table.code == 0, table.err
    header, *rows = table.out.splitlines()
    assert "MERGED" in header and "APPLIED" in header
    assert all("2020-" in row and f"{datetime.now(timezone.utc):%Y-%m-%d}" in row
               for row in rows), table.out

    intact = run_cli("audit", "verify", "--config", cfg, cwd=repo)
    assert intact.code == 0 and "2 records, chain intact" in intact.out, intact.err
    assert "2 applied change(s) checked against the registry, none missing" in intact.out
    lost = {"commit": "f" * 40, "at": time.time()}  # applied, then died before the record
    mlflow_client.set_model_version_tag(model, "1", "gitops.applied.production",
                                        json.dumps(lost))
    gap = run_cli("audit", "verify", "environments", "--config", cfg, cwd=repo)
    assert gap.code == 1 and "chain intact" not in gap.out
    assert f"gap: {model} v1 applied to production at " in gap.err
    assert f"by commit {'f' * 12} has no ledger record" in gap.err
    ledger = MlflowLedger(MlflowRegistry(mlflow_server.uri), f"ledger-{unique}")
    mlflow_client.delete_run(next(r.ref for r in ledger.read() if r.seq == 1))
    broken = run_cli("audit", "verify", "--config", cfg)
    assert broken.code == 1
    assert "record #1 is missing: deleted" in broken.err and "Traceback" not in broken.err


def test_report_on_a_scripted_history_gives_the_hand_computed_figures(
        tmp_path: Path, mlflow_server: Any, unique: str) -> None:
    """Production: v1 (created 0h) live at 2h; v2 (created 3h) at 7h, fails verification,
    rolled back at 8h; v3 (created 9h) at 10h. Lead times 2h, 4h, 1h: median 2h, p90
    rank 1.8 → 2h + 0.8·2h = 3.6h; failure rate 1/3; restore 1h. Written to the real ledger,
    read back by `report --since` as JSON."""
    base = (int(time.time() * 1000) // H - 48) * H  # two days ago, on the hour
    def e(h: float, action: str, v: int, frm: int | None, to: int | None,
          reason: str = "merge", created: float | None = None) -> Entry:
        return Entry("default", "production", "m", action, v, frm, to,  # type: ignore[arg-type]
                     "c" * 40, "Ada", base + int(h * H), reason,  # type: ignore[arg-type]
                     version_created_ms=None if created is None else base + int(created * H))

    history = [e(2, "set_alias", 1, None, 1, created=0), e(7, "set_alias", 2, 1, 2, created=3),
               e(7.5, "verify_failed", 2, 2, 2, "verification"),
               e(8, "set_alias", 1, 2, 1, "rollback", created=0),
               e(10, "set_alias", 3, 1, 3, created=9)]
    store = MlflowLedger(MlflowRegistry(mlflow_server.uri), f"ledger-{unique}")
    Ledger({"default": store}, "script").record(history)
    cfg = config(tmp_path, mlflow_server.uri, f"ledger-{unique}")
    result = run_cli("report", "--since", iso(base / 1000), "--config", cfg, "-o", "json",
                     cwd=tmp_path)
    assert result.code == 0, result.err
    (prod,) = json.loads(result.out)["environments"]
    assert {k: prod[k] for k in ("environment", "deployments", "lead_time_seconds",
                                 "change_failure_rate", "time_to_restore_seconds")} == {
        "environment": "production", "deployments": 3,
        "lead_time_seconds": {"median": 7200.0, "p90": 12960.0},
        "change_failure_rate": 1 / 3, "time_to_restore_seconds": {"median": 3600.0}}
    text = run_cli("report", "--since", "30d", "--config", cfg, cwd=tmp_path)
    assert text.code == 0, text.err
    assert ["production", "(all)", "3", "2h", "3h36m", "33%", "1h"] in [
        line.split() for line in text.out.splitlines()], text.out
