"""The forge the controller talks to, resolved once from the `forge:` config section: which
GitHub or GitLab repository, its API root and the token. Commit statuses, proposals, revert
pull requests and approvals all take a `ForgeTarget` from `resolve`, so the token is read in
one place and only ever sent to this one API root (requests never follow redirects)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlflow_gitops.adapters.config import ControllerConfig, ForgeConfig
from mlflow_gitops.adapters.forge import RemoteRepo, parse_remote, repository_url, send, token_from
from mlflow_gitops.core.errors import ConfigError

READ_TIMEOUT = 10.0  # seconds


@dataclass(frozen=True)
class ForgeTarget:
    """One repository at one forge, with the token for its API (never in a repr)."""

    remote: RemoteRepo
    api_url: str
    token: str = field(repr=False)

    @property
    def label(self) -> str:
        """`GitHub acme/envs`, for logs and messages."""
        return f"{self.remote.label} {self.remote.owner}/{self.remote.repo}"

    @property
    def remote_url(self) -> str:
        """An https URL of the repository that names this forge, for the pull-request calls
        that take a remote URL (with `api_url`, they reach this same API root)."""
        return f"https://{self.remote.host}/{self.remote.owner}/{self.remote.repo}.git"

    @property
    def repository_api(self) -> str:
        """The API URL of the repository (GitHub) or project (GitLab) itself."""
        return repository_url(self.remote, self.api_url)

    def get(self, suffix: str, params: dict[str, str] | None = None,
            timeout: float = READ_TIMEOUT) -> tuple[int, Any]:
        """GET `repository_api + suffix`: (status, decoded JSON or None); ForgeError when the
        forge cannot be reached (the token is never in the message). Reads time out sooner
        than writes: a pass waits on them."""
        return send(self.remote, self.api_url, "GET", self.repository_api + suffix, self.token,
                    params=params, timeout=timeout)


def resolve(settings: ForgeConfig, repo_url: str, where: str = "forge",
            token_file: str | None = None, api_url: str | None = None) -> ForgeTarget:
    """The target `settings` name; what they leave out comes from the repository URL.
    `token_file` / `api_url` (command-line flags) override the section's."""
    api = (api_url or settings.api_url or "").rstrip("/") or None
    if settings.repository is not None:
        if settings.provider is None or api is None:
            raise ConfigError(f"{where}.repository needs provider and api_url too")
        owner, _, name = settings.repository.strip("/").rpartition("/")
        if not owner or not name or (settings.provider == "github" and "/" in owner):
            shape = "OWNER/REPO" if settings.provider == "github" else "NAMESPACE/REPO"
            raise ConfigError(f"{where}.repository {settings.repository!r}: expected {shape}")
        host = api.split("://", 1)[-1].split("/", 1)[0]
        remote = RemoteRepo(settings.provider, host, owner, name)
    else:
        try:
            remote = parse_remote(repo_url, api)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}; or set {where}.repository, provider and "
                              "api_url") from None
        if settings.provider is not None and settings.provider != remote.kind:
            remote = RemoteRepo(settings.provider, remote.host, remote.owner, remote.repo)
    if api is not None and not api.startswith(("https://", "http://")):
        raise ConfigError(f"{where}.api_url {api!r}: expected https://HOST/…")
    path = token_file or settings.token_file
    try:
        token = token_from(path, remote.kind)
    except ConfigError as exc:
        if path is None or token_file is not None:
            raise
        raise ConfigError(str(exc).replace("--token-file", f"{where}.token_file")) from None
    return ForgeTarget(remote, api or remote.default_api_url, token)


def configured(config: ControllerConfig, repo_url: str) -> ForgeTarget | None:
    """The controller's forge (`forge:`, or an old-style `commit_status:`), None without one."""
    settings = config.forge_settings
    if settings is None:
        return None
    where = "forge" if config.forge is not None else "commit_status"
    return resolve(settings, repo_url, where)
