"""The controller config file (`--config`, SPEC §6): which registries exist and, for `run`,
where the desired state lives. Without a config the one registry is MLFLOW_TRACKING_URI."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import yaml
from mlflow_gitops.core.errors import ConfigError
from mlflow_gitops.core.feedback import EVENT_KINDS, EventKind
from mlflow_gitops.core.model import DEFAULT_REGISTRY
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class RegistryConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tracking_uri: str
    token_file: str | None = Field(None, description="file holding an MLflow bearer token")


class CommitStatusConfig(BaseModel):
    """Commit statuses per environment (SPEC §6a); the forge, API and repository default to
    what the repository URL says (github.com, gitlab.com, GitHub Enterprise, GitLab)."""

    model_config = ConfigDict(extra="forbid")

    token_file: str = Field(description="file holding a token allowed to set commit statuses")
    provider: Literal["github", "gitlab"] | None = None
    api_url: str | None = Field(None, description="e.g. https://github.example.com/api/v3")
    repository: str | None = Field(None, description="OWNER/REPO (GitLab: NAMESPACE/REPO)")
    target_url: str | None = Field(
        None, description="link shown with each status; {environment} and {sha} are filled in")


class NotificationConfig(BaseModel):
    """One outgoing webhook (SPEC §6a)."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = None
    url_file: str | None = Field(None, description="file holding the URL (a Slack webhook "
                                 "URL is a secret)")
    format: Literal["slack", "json"] = "json"
    events: list[EventKind] = Field(default_factory=lambda: list(EVENT_KINDS))
    secret_file: str | None = Field(None, description="HMAC-SHA256 key for format json")

    @model_validator(mode="after")
    def _one_url(self) -> NotificationConfig:
        if (self.url is None) == (self.url_file is None):
            raise ValueError("give exactly one of url and url_file")
        if self.secret_file is not None and self.format != "json":
            raise ValueError("secret_file signs format json only; Slack webhooks are not signed")
        return self


class ControllerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    registries: dict[str, RegistryConfig] = Field(default_factory=dict)
    commit_status: CommitStatusConfig | None = None
    notifications: list[NotificationConfig] = Field(default_factory=list)
    repo: str | None = None
    branch: str = "main"
    path: str = "environments"
    interval: float = 60.0
    mlflow_ui_url: str | None = Field(None, description="MLflow UI base URL for the web page's "
                                      "links (never with credentials)")


def load_config(path: str | None) -> ControllerConfig:
    """Read `path` (None → empty config); the default registry falls back to the env var."""
    config = ControllerConfig()
    if path:
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except OSError as exc:
            raise ConfigError(f"cannot read config {path}: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
        try:
            config = ControllerConfig.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            message = first["msg"].removeprefix("Value error, ")
            raise ConfigError(f"{path}: {where or 'top level'}: {message}") from None
    if DEFAULT_REGISTRY not in config.registries and os.environ.get("MLFLOW_TRACKING_URI"):
        config.registries[DEFAULT_REGISTRY] = RegistryConfig(
            tracking_uri=os.environ["MLFLOW_TRACKING_URI"], token_file=None)
    return config


def registry_config(config: ControllerConfig, name: str) -> RegistryConfig:
    try:
        return config.registries[name]
    except KeyError:
        if name == DEFAULT_REGISTRY:
            raise ConfigError(
                "no registry configured: set MLFLOW_TRACKING_URI "
                "(e.g. export MLFLOW_TRACKING_URI=http://127.0.0.1:5000) or pass --config"
            ) from None
        raise ConfigError(
            f"registry '{name}' is not in the config "
            f"(known: {', '.join(sorted(config.registries)) or 'none'}); add it under registries:"
        ) from None
