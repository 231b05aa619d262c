"""The `commit_status:` and `notifications:` config: where statuses go is read
from the repository URL, and a wrong receiver is one clear line naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow_gitops.adapters.config import CommitStatusConfig, load_config
from mlflow_gitops.adapters.feedback import build, status_target
from mlflow_gitops.core.errors import ConfigError


def test_forge_and_repository_come_from_the_repo_url(tmp_path: Path) -> None:
    """A gitlab.com remote gives GitLab's API root and nested namespace; github.com GitHub's."""
    token = tmp_path / "token"
    token.write_text("t0k3n\n")
    lab = status_target(CommitStatusConfig(token_file=str(token)),
                        "https://gitlab.com/ml/team/envs.git")
    assert (lab.remote.kind, lab.remote.owner, lab.remote.repo, lab.api_url) == (
        "gitlab", "ml/team", "envs", "https://gitlab.com/api/v4")
    hub = status_target(CommitStatusConfig(token_file=str(token)),
                        "git@github.com:acme/envs.git")
    assert (hub.remote.kind, hub.api_url, hub.token) == ("github", "https://api.github.com",
                                                         "t0k3n")
    assert "t0k3n" not in repr(hub)


def test_a_file_remote_needs_the_repository_spelled_out(tmp_path: Path) -> None:
    """A remote that names no forge is refused with what to set instead."""
    token = tmp_path / "token"
    token.write_text("t0k3n\n")
    with pytest.raises(ConfigError, match="commit_status.repository"):
        status_target(CommitStatusConfig(token_file=str(token)), "file:///srv/envs.git")


@pytest.mark.parametrize(("receiver", "message"), [
    ("url: https://x.example\n    url_file: /f\n", "exactly one of url and url_file"),
    ("url: https://x.example\n    format: slack\n    secret_file: /s\n", "signs format json"),
    ("url: https://x.example\n    events: [applied, deployed]\n", "notifications.0.events.1"),
])
def test_a_wrong_receiver_is_one_line_naming_the_key(tmp_path: Path, receiver: str,
                                                     message: str) -> None:
    """Both url and url_file, a signed Slack receiver, or an unknown event: one line."""
    path = tmp_path / "config.yaml"
    path.write_text("notifications:\n  - " + receiver)
    with pytest.raises(ConfigError) as caught:
        load_config(str(path))
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_secrets_read_from_files_are_handed_to_the_redactor(tmp_path: Path) -> None:
    """The Slack URL (and its path) and the HMAC key reach the log redactor."""
    (tmp_path / "url").write_text("https://hooks.slack.com/services/T1/B2/SeCrEt\n")
    (tmp_path / "key").write_text("hmac-key\n")
    path = tmp_path / "config.yaml"
    path.write_text(f"notifications:\n  - url_file: {tmp_path / 'url'}\n    format: slack\n"
                    f"  - url: https://x.example/h\n    secret_file: {tmp_path / 'key'}\n")
    secrets: list[str] = []
    sender = build(load_config(str(path)), "file:///srv/envs.git", secrets.append)
    assert sender is not None
    sender.stop(timeout=1)
    assert secrets == ["https://hooks.slack.com/services/T1/B2/SeCrEt",
                       "/services/T1/B2/SeCrEt", "hmac-key"]
