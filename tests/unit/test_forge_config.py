"""The one `forge:` section: commit statuses, proposals and approvals resolve the same
repository, API root and token from it; the old `commit_status:` keys still work alone."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow_gitops.adapters.config import load_config
from mlflow_gitops.adapters.feedback import build
from mlflow_gitops.adapters.forge_target import configured
from mlflow_gitops.core.errors import ConfigError


def _config(tmp_path: Path, text: str) -> str:
    (tmp_path / "token").write_text("t0k3n\n")
    path = tmp_path / "config.yaml"
    path.write_text(text.replace("TOKEN", str(tmp_path / "token")))
    return str(path)


def test_forge_section_names_repository_api_and_token(tmp_path: Path) -> None:
    """An explicit forge: section wins over the repository URL and keeps the token out of
    its repr."""
    config = load_config(_config(tmp_path, "forge:\n  provider: gitlab\n  api_url: "
                                 "https://git.example.com/api/v4/\n  repository: ml/team/envs"
                                 "\n  token_file: TOKEN\n"))
    target = configured(config, "file:///srv/envs.git")
    assert target is not None
    assert (target.remote.kind, target.remote.owner, target.remote.repo, target.api_url) == (
        "gitlab", "ml/team", "envs", "https://git.example.com/api/v4")
    assert target.repository_api == "https://git.example.com/api/v4/projects/ml%2Fteam%2Fenvs"
    assert target.token == "t0k3n" and "t0k3n" not in repr(target)


def test_forge_defaults_come_from_the_repository_url(tmp_path: Path) -> None:
    """With only token_file, github.com in the repository URL gives GitHub's API root."""
    config = load_config(_config(tmp_path, "forge:\n  token_file: TOKEN\n"))
    target = configured(config, "git@github.com:acme/envs.git")
    assert target is not None
    assert (target.remote.kind, target.api_url, target.label) == (
        "github", "https://api.github.com", "GitHub acme/envs")


def test_old_commit_status_keys_still_work_and_say_they_moved(tmp_path: Path) -> None:
    """commit_status with token_file and friends means a forge: section, with one notice."""
    config = load_config(_config(tmp_path, "commit_status:\n  provider: github\n  api_url: "
                                 "https://ghe.example.com/api/v3\n  repository: acme/envs\n"
                                 "  token_file: TOKEN\n"))
    target = configured(config, "file:///srv/envs.git")
    assert target is not None and target.api_url == "https://ghe.example.com/api/v3"
    assert len(config.notices) == 1 and "forge:" in config.notices[0]
    secrets: list[str] = []
    sender = build(config, "file:///srv/envs.git", secrets.append)
    assert sender is not None and sender.target is not None
    sender.stop(timeout=1)
    assert sender.target.remote.owner == "acme" and secrets == ["t0k3n"]


def test_forge_section_turns_commit_statuses_on_unless_disabled(tmp_path: Path) -> None:
    """forge: alone sets commit statuses; commit_status.enabled: false turns them off."""
    on = load_config(_config(tmp_path, "forge:\n  token_file: TOKEN\n"))
    sender = build(on, "https://github.com/acme/envs.git", lambda _: None)
    assert sender is not None and sender.target is not None
    sender.stop(timeout=1)
    off = load_config(_config(tmp_path, "forge:\n  token_file: TOKEN\n"
                              "commit_status:\n  enabled: false\n"))
    assert build(off, "https://github.com/acme/envs.git", lambda _: None) is None
    assert off.notices == []


@pytest.mark.parametrize(("text", "message"), [
    ("forge:\n  token_file: TOKEN\ncommit_status:\n  token_file: TOKEN\n",
     "config.yaml:3: commit_status: the forge is set twice"),
    ("forge:\n  provider: bitbucket\n", "config.yaml:2: forge.provider"),
    ("forge:\n  tokn_file: x\n", "config.yaml:2: forge.tokn_file"),
])
def test_a_wrong_forge_section_is_one_line(tmp_path: Path, text: str, message: str) -> None:
    """A forge given twice, an unknown provider or key: one line with file:line."""
    with pytest.raises(ConfigError) as caught:
        load_config(_config(tmp_path, text))
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_an_unreadable_forge_token_names_the_key(tmp_path: Path) -> None:
    """A token file that cannot be read is reported as forge.token_file, not a flag."""
    config = load_config(_config(tmp_path, f"forge:\n  token_file: {tmp_path / 'nope'}\n"))
    with pytest.raises(ConfigError, match="cannot read forge.token_file"):
        configured(config, "https://github.com/acme/envs.git")


def test_repository_without_provider_and_api_url_is_refused(tmp_path: Path) -> None:
    """repository alone cannot say which forge or API root: one line naming what to add."""
    config = load_config(_config(tmp_path, "forge:\n  repository: acme/envs\n  token_file: "
                                 "TOKEN\n"))
    with pytest.raises(ConfigError, match="forge.repository needs provider and api_url"):
        configured(config, "file:///srv/envs.git")
