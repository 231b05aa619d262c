"""The controller config file (`--config`): which registries exist and, for `run`,
where the desired state lives. Without a config the one registry is MLFLOW_TRACKING_URI."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from mlflow_gitops.adapters.uris import scrub, secret_query_keys
from mlflow_gitops.core.errors import ConfigError
from mlflow_gitops.core.feedback import EVENT_KINDS, EventKind
from mlflow_gitops.core.model import DEFAULT_REGISTRY
from mlflow_gitops.desired.yamlsource import YamlSyntaxError, parse
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)


class RegistryConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tracking_uri: str
    token_file: str | None = Field(None, description="file holding an MLflow bearer token")

    @field_validator("tracking_uri")
    @classmethod
    def _no_token_in_query(cls, value: str) -> str:
        keys = secret_query_keys(value)
        if keys:
            raise ValueError(f"the tracking URI carries a credential in its query ({keys[0]}=): "
                             "remove it and put the token in token_file")
        return value


class ForgeConfig(BaseModel):
    """The one forge (GitHub or GitLab) the controller talks to: commit statuses, proposals,
    revert pull requests and approvals all use it. Provider, API root and repository default
    to what the repository URL says (github.com, gitlab.com, GitHub Enterprise, GitLab)."""

    model_config = ConfigDict(extra="forbid")

    provider: Literal["github", "gitlab"] | None = None
    api_url: str | None = Field(None, description="e.g. https://github.example.com/api/v3")
    repository: str | None = Field(None, description="OWNER/REPO (GitLab: NAMESPACE/REPO)")
    token_file: str | None = Field(None, description="file holding the API token (default: "
                                   "GITHUB_TOKEN / GITLAB_TOKEN)")


#: The keys `commit_status:` took before the forge had a section of its own.
LEGACY_FORGE_KEYS = ("provider", "api_url", "repository", "token_file")


class CommitStatusConfig(BaseModel):
    """Commit statuses per environment, sent to the `forge:`. The forge keys it
    used to take itself (token_file, provider, api_url, repository) still work alone and
    mean a `forge:` section; the controller says so once at start."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    target_url: str | None = Field(
        None, description="link shown with each status; {environment} and {sha} are filled in")
    token_file: str | None = Field(None, description="deprecated: forge.token_file")
    provider: Literal["github", "gitlab"] | None = Field(None, description="deprecated")
    api_url: str | None = Field(None, description="deprecated: forge.api_url")
    repository: str | None = Field(None, description="deprecated: forge.repository")

    @property
    def legacy_forge(self) -> ForgeConfig | None:
        """The forge this section names the old way, or None."""
        if all(getattr(self, key) is None for key in LEGACY_FORGE_KEYS):
            return None
        return ForgeConfig(**{key: getattr(self, key) for key in LEGACY_FORGE_KEYS})


class NotificationConfig(BaseModel):
    """One outgoing webhook."""

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


class VerificationSourceConfig(BaseModel):
    """A server `verify:` checks may query: exactly one of a Prometheus base URL
    or an HTTP JSON endpoint. Operators name them here; environment files only use the names."""

    model_config = ConfigDict(extra="forbid")

    prometheus: str | None = Field(None, description="base URL, e.g. http://prometheus:9090")
    http: str | None = Field(None, description="URL answering JSON; {model}, {version} and "
                             "{environment} are filled in, URL-encoded")
    json_path: str | None = Field(None, description="http: where the number is, e.g. "
                                  "$.error_rate (a check's path: overrides it)")
    token_file: str | None = Field(None, description="file holding a bearer token")
    timeout: float = Field(5.0, gt=0, le=60, allow_inf_nan=False,
                           description="seconds one query may take")

    @model_validator(mode="after")
    def _one_kind(self) -> VerificationSourceConfig:
        if (self.prometheus is None) == (self.http is None):
            raise ValueError("a verification source needs exactly one of prometheus: (a base "
                             "URL) or http: (a JSON endpoint)")
        url = self.prometheus or self.http or ""
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"{url[:60]!r} is not an http(s) URL")
        if "@" in urlsplit(url).netloc:
            raise ValueError("the URL carries credentials: remove them and put the token "
                             "in token_file")
        if secret_query_keys(url):
            raise ValueError("the URL carries a credential in its query: remove it and put "
                             "the token in token_file")
        if self.json_path is not None:
            from mlflow_gitops.desired.jsonpath import problem

            if self.prometheus is not None:
                raise ValueError("json_path belongs to http: sources")
            if found := problem(self.json_path):
                raise ValueError(found)
        return self

    @property
    def kind(self) -> str:
        """The kind the environment validation checks against (desired.verification)."""
        if self.prometheus is not None:
            return "prometheus"
        return "http+path" if self.json_path is not None else "http"


class SignedCommitsConfig(BaseModel):
    """Keys whose signatures the controller accepts on a guarded change's commits."""

    model_config = ConfigDict(extra="forbid")

    allowed_signers_file: str | None = Field(
        None, description="SSH allowed-signers file (ssh-keygen(1) ALLOWED SIGNERS), as "
        "git's gpg.ssh.allowedSignersFile")
    gpg_public_keys_file: str | None = Field(
        None, description="ASCII-armored GPG public keys (gpg --export --armor): every key in "
        "it is allowed")

    @model_validator(mode="after")
    def _some_keys(self) -> SignedCommitsConfig:
        if self.allowed_signers_file is None and self.gpg_public_keys_file is None:
            raise ValueError("give allowed_signers_file (SSH keys), gpg_public_keys_file "
                             "(GPG keys) or both")
        return self


class ApprovalsConfig(BaseModel):
    """Approving reviews a guarded change's pull request needs, read from the forge."""

    model_config = ConfigDict(extra="forbid")

    reviews: int = Field(ge=1, le=50, description="approving reviews by people other than the "
                         "pull request's author")
    recheck_seconds: float = Field(60.0, ge=5, le=3600, allow_inf_nan=False,
                                   description="how long a refusal is trusted before the "
                                   "forge is asked again")


class TrustConfig(BaseModel):
    """What the controller itself checks before it applies a change to the environments it
    guards: rules out of reach of a pull request, which edits environment files only."""

    model_config = ConfigDict(extra="forbid")

    environments: list[str] = Field(min_length=1)
    signed_commits: SignedCommitsConfig | None = None
    approvals: ApprovalsConfig | None = None

    @model_validator(mode="after")
    def _some_rule(self) -> TrustConfig:
        if self.signed_commits is None and self.approvals is None:
            raise ValueError("name at least one rule: signed_commits or approvals")
        return self


class LedgerConfig(BaseModel):
    """`ledger:`: the experiment in each registry that records every change written to it."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    experiment: str = Field("mlflow-gitops-ledger", min_length=1, max_length=500,
                            description="MLflow experiment name, the same in every registry")


class ControllerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    registries: dict[str, RegistryConfig] = Field(default_factory=dict)
    forge: ForgeConfig | None = None
    commit_status: CommitStatusConfig | None = None
    notifications: list[NotificationConfig] = Field(default_factory=list)
    repo: str | None = None
    branch: str = "main"
    path: str = "environments"
    interval: float = Field(60.0, gt=0, allow_inf_nan=False,
                            description="seconds between polls (above 0)")
    mlflow_ui_url: str | None = Field(None, description="MLflow UI base URL for the web page's "
                                      "links (never with credentials)")
    verification_sources: dict[str, VerificationSourceConfig] = Field(
        default_factory=dict, description="servers `verify:` checks may query, by name")
    trust: TrustConfig | None = None
    ledger: LedgerConfig = Field(default_factory=LedgerConfig)

    @field_validator("verification_sources")
    @classmethod
    def _source_names(cls, value: dict[str, VerificationSourceConfig]
                      ) -> dict[str, VerificationSourceConfig]:
        from mlflow_gitops.desired.schema_verify import SOURCE_NAME

        for name in value:
            if not SOURCE_NAME.match(name):
                raise ValueError(f"source name {name[:60]!r} must be a name (letters, digits, "
                                 "'_', '-', '.'); the URL goes under it, e.g. "
                                 "monitoring: {prometheus: http://prometheus:9090}")
        return value

    def source_kinds(self) -> dict[str, str]:
        """Verification source name → kind, for validating environment files."""
        return {name: source.kind for name, source in self.verification_sources.items()}

    @field_validator("commit_status")
    @classmethod
    def _one_forge(cls, value: CommitStatusConfig | None, info: ValidationInfo
                   ) -> CommitStatusConfig | None:
        if value is not None and value.legacy_forge is not None and info.data.get("forge"):
            raise ValueError("the forge is set twice: move token_file, provider, api_url and "
                             "repository from commit_status: into forge: (one place)")
        return value

    @field_validator("trust")
    @classmethod
    def _approvals_need_a_forge(cls, value: TrustConfig | None, info: ValidationInfo
                                ) -> TrustConfig | None:
        statuses = info.data.get("commit_status")
        has_forge = info.data.get("forge") is not None or (
            statuses is not None and statuses.legacy_forge is not None)
        if value is not None and value.approvals is not None and not has_forge:
            raise ValueError("approvals are read from the forge: add a forge: section "
                             "(provider, api_url, repository, token_file)")
        return value

    @property
    def forge_settings(self) -> ForgeConfig | None:
        """`forge:`, or the forge an old-style `commit_status:` names."""
        if self.forge is not None:
            return self.forge
        return self.commit_status.legacy_forge if self.commit_status else None

    @property
    def notices(self) -> list[str]:
        """One line per deprecated key in use, logged once at start."""
        if self.commit_status is not None and self.commit_status.legacy_forge is not None:
            used = [k for k in LEGACY_FORGE_KEYS if getattr(self.commit_status, k) is not None]
            return [f"commit_status.{', '.join(used)}: these keys moved to the forge: section "
                    "(shared by commit statuses, proposals and approvals); they still work, "
                    "but move them"]
        return []


def load_config(path: str | None) -> ControllerConfig:
    """Read `path` (None → empty config); the default registry falls back to the env var."""
    config = ControllerConfig()
    if path:
        try:
            text = Path(path).read_bytes().decode("utf-8", errors="replace")
        except OSError as exc:
            raise ConfigError(f"cannot read config {path}: {exc.strerror}") from exc
        config = _validated(path, text)
    if DEFAULT_REGISTRY not in config.registries and os.environ.get("MLFLOW_TRACKING_URI"):
        try:
            config.registries[DEFAULT_REGISTRY] = RegistryConfig(
                tracking_uri=os.environ["MLFLOW_TRACKING_URI"], token_file=None)
        except ValidationError as exc:
            message = str(exc.errors(include_url=False)[0]["msg"]).removeprefix("Value error, ")
            raise ConfigError(f"MLFLOW_TRACKING_URI: {scrub(message)}") from None
    return config


def _validated(path: str, text: str) -> ControllerConfig:
    """The config in `text`, or a one-line ConfigError with `path:line:`, whatever is wrong
    (the same hardened YAML reader as environment files: YAML 1.2 values, limits)."""
    try:
        parsed = parse(text)
    except YamlSyntaxError as exc:
        raise ConfigError(f"{path}:{exc.line}: {exc}") from None
    data: Any = parsed.data if parsed.data is not None else {}
    if parsed.duplicates:
        line, message = parsed.duplicates[0]
        raise ConfigError(f"{path}:{line}: {message}")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: expected a mapping (registries:, repo:, ...)")
    try:
        return ControllerConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        loc = tuple(first["loc"])
        where = ".".join(str(p)[:60] for p in loc)
        message = scrub(str(first["msg"]).removeprefix("Value error, "))
        raise ConfigError(f"{path}:{parsed.line_of(loc)}: {where or 'top level'}: {message}") \
            from None


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
