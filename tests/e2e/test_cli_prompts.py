"""Prompts through the day-two commands, as processes against the real MLflow server: hold
and release, reject, propose (the edit lands under `prompts:`) and history."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mlflow_gitops.core.tags import REJECTED, hold_tag

from tests.support.cli import run_cli
from tests.support.envfiles import HEADER
from tests.support.gitrepos import bare_remote, git

PROPOSING = HEADER + """target:
  alias: champion
propose:
  when:
    tags: {validation_status: passed}
prompts:
  %s: 1   # the proposal edits this line
"""


@pytest.fixture()
def genai(mlflow_server: Any) -> Any:
    import mlflow

    mlflow.set_tracking_uri(mlflow_server.uri)
    mlflow.set_registry_uri(mlflow_server.uri)
    return mlflow.genai


def champion(folder: Path, prompt: str, version: int) -> None:
    (folder / "champion.yaml").write_text(
        HEADER + f"target:\n  alias: champion\nprompts:\n  {prompt}: {version}\n")


def served(genai: Any, prompt: str) -> int:
    return int(genai.load_prompt(f"prompts:/{prompt}@champion", cache_ttl_seconds=0).version)


def row_of(envs_dir: Path, env: dict[str, str], prompt: str) -> dict[str, Any]:
    status = run_cli("status", str(envs_dir), "--output", "json", env=env)
    [row] = [r for r in json.loads(status.out)["environments"] if r["model"] == prompt]
    return dict(row)


def test_a_held_prompt_is_left_alone_and_a_rejected_prompt_version_is_refused(
        genai: Any, mlflow_server: Any, mlflow_client: Any, envs_dir: Path,
        unique: str) -> None:
    """While a prompt is held, apply leaves its alias (exit 0, status Held); after release it
    converges; a rejected prompt version is Refused by plan and apply (exit 1) and the alias
    stays where it was."""
    prompt = f"tone-{unique}"
    for template in ("Reply: {{q}}", "Reply kindly: {{q}}", "Reply in caps: {{q}}"):
        genai.register_prompt(name=prompt, template=template)
    env = {"MLFLOW_TRACKING_URI": mlflow_server.uri}
    champion(envs_dir, prompt, 1)
    assert run_cli("apply", str(envs_dir), env=env).code == 0
    assert served(genai, prompt) == 1

    champion(envs_dir, prompt, 2)
    hold = run_cli("hold", prompt, str(envs_dir), "--env", "champion", "--reason", "bad tone",
                   "--by", "ann", env=env)
    assert hold.code == 0, hold.err
    assert hold_tag("champion") in mlflow_client.get_prompt(prompt).tags
    applied = run_cli("apply", str(envs_dir), env=env)
    assert applied.code == 0, applied.err
    assert served(genai, prompt) == 1
    row = row_of(envs_dir, env, prompt)
    assert (row["sync"], row["kind"]) == ("Held", "prompt") and "bad tone" in row["message"]

    released = run_cli("release", prompt, str(envs_dir), "--env", "champion", env=env)
    assert released.code == 0 and f"{prompt} released in champion" in released.out
    assert run_cli("apply", str(envs_dir), env=env).code == 0
    assert served(genai, prompt) == 2

    rejected = run_cli("reject", prompt, "3", "--reason", "shouts at users", "--by", "bob",
                       env=env)
    assert rejected.code == 0, rejected.err
    assert "shouts at users" in mlflow_client.get_prompt_version(prompt, 3).tags[REJECTED]
    champion(envs_dir, prompt, 3)
    planned = run_cli("plan", str(envs_dir), "--output", "json", env=env)
    [error] = json.loads(planned.out)["errors"]
    assert error["kind"] == "gate" and "is rejected by bob" in error["message"]
    assert json.loads(planned.out)["changes"] == []
    refused = run_cli("apply", str(envs_dir), env=env)
    assert refused.code == 1
    assert f"champion.yaml:6: {prompt} v3 is rejected by bob" in refused.out + refused.err
    assert served(genai, prompt) == 2
    assert row_of(envs_dir, env, prompt)["sync"] == "Refused"


def test_propose_puts_a_tagged_prompt_version_under_prompts_and_history_lists_it(
        tmp_path: Path, genai: Any, mlflow_server: Any, mlflow_client: Any,
        unique: str) -> None:
    """A prompt version carrying the propose tags gets a branch whose one-line edit is the
    prompt's own line under `prompts:` (no `models:` entry appears); once merged, history
    lists the prompt's assignments newest first."""
    prompt = f"proposed-{unique}"
    genai.register_prompt(name=prompt, template="Classify: {{t}}")
    genai.register_prompt(name=prompt, template="Classify carefully: {{t}}")
    mlflow_client.set_prompt_version_tag(prompt, 2, "validation_status", "passed")
    _, work = bare_remote(tmp_path, {"environments/champion.yaml": PROPOSING % prompt})
    env = {"MLFLOW_TRACKING_URI": mlflow_server.uri}
    result = run_cli("propose", cwd=work, env=env)
    assert result.code == 0, result.err
    branch = f"propose/champion/{prompt}"
    assert f"champion/{prompt}: proposed v2 (v1 → v2) on branch {branch}" in result.out
    edited = git(work, "show", f"{branch}:environments/champion.yaml") + "\n"
    assert edited == (PROMPTS_AT_2 := (PROPOSING % prompt).replace(
        f"{prompt}: 1   #", f"{prompt}: 2   #"))
    assert "models:" not in PROMPTS_AT_2

    git(work, "merge", "-q", "--no-ff", branch, "-m", f"Merge {branch}")
    history = run_cli("history", prompt, "--env", "champion", "--output", "json", cwd=work)
    assert history.code == 0, history.err
    entries = json.loads(history.out)
    assert [(e["old"], e["new"]) for e in entries] == [(1, 2), (None, 1)]
    assert entries[0]["subject"] == f"Promote {prompt} to v2 in champion (v1 → v2)"


def test_promote_and_rollback_edit_the_prompt_line_and_reviews_show_the_template_diff(
        tmp_path: Path, genai: Any, mlflow_server: Any, unique: str) -> None:
    """`promote NAME VERSION --env ENV` on a prompt edits its line under `prompts:` (found out
    from the registry, no flag); `plan` of that branch and the pull-request comment (`diff
    -o markdown`) show the template's diff between the version the alias leaves and the one
    it moves to; after the merge, `rollback` edits the same line back."""
    prompt = f"promoted-{unique}"
    genai.register_prompt(name=prompt, template="Answer: {{q}}\nBe short.")
    genai.register_prompt(name=prompt, template="Answer politely: {{q}}\nBe short.")
    files = {"environments/champion.yaml":
             HEADER + f"target:\n  alias: champion\nprompts:\n  {prompt}: 1\n"}
    _, work = bare_remote(tmp_path, files)
    env = {"MLFLOW_TRACKING_URI": mlflow_server.uri}
    assert run_cli("apply", "environments", cwd=work, env=env).code == 0
    promoted = run_cli("promote", prompt, "2", "--env", "champion", cwd=work, env=env)
    assert promoted.code == 0, promoted.err
    branch = f"promote/{prompt}-v2-to-champion"
    assert git(work, "show", f"{branch}:environments/champion.yaml") + "\n" == files[
        "environments/champion.yaml"].replace(f"{prompt}: 1", f"{prompt}: 2")
    git(work, "checkout", "-q", branch)
    planned = run_cli("plan", "environments", cwd=work, env=env)
    assert planned.code == 0, planned.err
    assert f"prompt {prompt} @champion: v1 → v2" in planned.out
    assert "template v1 → v2:" in planned.out
    assert "-Answer: {{q}}" in planned.out and "+Answer politely: {{q}}" in planned.out
    assert "-Be short." not in planned.out
    comment = run_cli("diff", "main", branch, "-o", "markdown", cwd=work, env=env)
    assert comment.code == 0, comment.err
    assert "Template v1 → v2:\n\n```diff\n" in comment.out
    assert "-Answer: {{q}}\n+Answer politely: {{q}}\n" in comment.out

    git(work, "checkout", "-q", "main")
    git(work, "merge", "-q", "--no-ff", branch, "-m", f"Merge {branch}")
    assert run_cli("apply", "environments", cwd=work, env=env).code == 0
    assert served(genai, prompt) == 2
    back = run_cli("rollback", prompt, "--env", "champion", cwd=work, env=env)
    assert back.code == 0, back.err
    assert git(work, "show", f"rollback/{prompt}-v1-in-champion:environments/champion.yaml"
               ) + "\n" == files["environments/champion.yaml"]
