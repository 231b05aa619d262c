"""The project's own error hierarchy. Adapters wrap client-library errors into these (with
the cause chained), so the core and the CLI never see an MlflowException or GitCommandError."""

from __future__ import annotations


class GitOpsError(Exception):
    """Base: a message a user can act on."""


class ConfigError(GitOpsError):
    """Bad configuration or arguments: needs a human, retrying will not help."""


class RegistryError(GitOpsError):
    """A registry call failed."""

    transient = False


class NotFound(RegistryError):
    """The model, version or run does not exist."""


class InvalidRequest(RegistryError):
    """The registry rejected the request (bad name, bad alias, permission)."""


class TransientRegistryError(RegistryError):
    """The registry was unreachable or overloaded: retry with backoff."""

    transient = True


class SourceError(GitOpsError):
    """Git could not be read (clone, fetch, missing branch or path)."""

    transient = True
