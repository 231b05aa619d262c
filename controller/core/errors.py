"""The project's one error hierarchy. Adapters wrap client-library errors into these (with
the cause chained), so the core and the CLI never see an MlflowException or GitCommandError.

Every error says whether time alone may fix it (`transient`: retry with backoff, as kopf's
TemporaryError) or a human must act (a permanent error: stop retrying the same input)."""

from __future__ import annotations


class GitOpsError(Exception):
    """Base: a message a user can act on."""

    transient = False


class ConfigError(GitOpsError):
    """Bad configuration or arguments: needs a human, retrying will not help."""


class InputError(GitOpsError):
    """A file or document that cannot be read as what it claims to be (with a line)."""

    def __init__(self, line: int, message: str):
        self.line = line
        super().__init__(message)


class RegistryError(GitOpsError):
    """A registry call failed."""


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


class ForgeError(GitOpsError):
    """The forge API refused or could not be reached; the message is one line, token-free."""


class DeliveryError(ForgeError):
    """A commit status or notification was not delivered; `transient` when a retry may
    succeed (timeouts, 5xx, 429), not when the receiver refused it (401, 403, 404, 422)."""

    def __init__(self, message: str, transient: bool = True):
        super().__init__(message)
        self.transient = transient


class KubeError(GitOpsError):
    """A Kubernetes API call failed (API server unreachable, forbidden, invalid)."""

    transient = True


class LeaseError(KubeError):
    """The Lease could not be read or written."""


class LeaseNotFound(LeaseError):
    """The Lease does not exist yet."""


class LeaseConflict(LeaseError):
    """Create found the Lease already there, or replace carried a stale resourceVersion."""
