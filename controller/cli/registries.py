"""The registries a command works with, built from the config file: each one's connection
problems named the same way by every command (its name, its URI without credentials,
and where the URI comes from)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mlflow_gitops.cli.common import Fatal, _error
from mlflow_gitops.core.ports import RegistryPort

if TYPE_CHECKING:
    from mlflow_gitops.adapters.mlflow.registry import MlflowRegistry


def build_registries(config_path: str | None, names: tuple[str, ...], one_shot: bool = True
                     ) -> dict[str, RegistryPort]:
    """The registries by name. A one-shot command does not retry a refused connection (a
    person is waiting; the controller backs off on its own instead)."""
    from mlflow_gitops.adapters.config import load_config, registry_config
    from mlflow_gitops.adapters.mlflow.registry import MlflowRegistry, configure_http_defaults

    if one_shot:
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")
    configure_http_defaults()
    config = load_config(config_path)
    out: dict[str, RegistryPort] = {}
    for name in names:
        rc = registry_config(config, name)
        registry = MlflowRegistry(rc.tracking_uri, name=name, token_file=rc.token_file)
        # A person reads a one-shot command's error; the controller keeps its own words.
        out[name] = Named(registry, config_path) if one_shot else registry
    return out


UNREACHABLE = "registry unreachable: "


def unreachable_message(name: str, uri: str, reason: str, config_path: str | None) -> str:
    """The one way every command names a registry it cannot reach: its name, its URI
    without credentials, why, and where the URI comes from."""
    from mlflow_gitops.adapters.uris import without_credentials

    where = (f"check tracking_uri of registry '{name}' in {config_path}" if config_path
             else "is it running? Check MLFLOW_TRACKING_URI")
    shown = without_credentials(uri)
    return f"cannot reach registry '{name}' at {shown} ({reason.removeprefix(UNREACHABLE)})" \
        f"; {where}"


class Named:
    """A registry adapter whose 'unreachable' errors name the registry the way every command
    does (`unreachable_message`); everything else passes through unchanged."""

    def __init__(self, registry: MlflowRegistry, config_path: str | None) -> None:
        self._registry = registry
        self._config_path = config_path

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self._registry, attr)
        if not callable(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            from mlflow_gitops.core.errors import TransientRegistryError

            args = tuple(a._registry if isinstance(a, Named) else a for a in args)
            try:
                return value(*args, **kwargs)
            except TransientRegistryError as exc:
                if not str(exc).startswith(UNREACHABLE):
                    raise
                raise TransientRegistryError(unreachable_message(
                    self._registry.name, self._registry.tracking_uri, str(exc),
                    self._config_path)) from exc

        return call


def mlflow_adapter(registry: RegistryPort) -> MlflowRegistry:
    """The MLflow adapter behind a registry port (the ledger needs its experiments and runs,
    which the port does not offer); a `Named` wrapper is looked through."""
    from mlflow_gitops.adapters.mlflow.registry import MlflowRegistry

    inner = registry._registry if isinstance(registry, Named) else registry
    if not isinstance(inner, MlflowRegistry):
        raise TypeError(f"{type(inner).__name__} is not an MLflow registry adapter")
    return inner


def report_unreachable(errors: Mapping[str, str], registries: Mapping[str, RegistryPort],
                       config_path: str | None) -> None:
    """One line per registry that could not be read, naming its URI (no credentials) and
    where the URI comes from; exits 1 when no registry could be read."""
    for name, message in sorted(errors.items()):
        _error(message if message.startswith("cannot reach registry") else
               unreachable_message(name, mlflow_adapter(registries[name]).tracking_uri, message,
                                    config_path))
    if errors and set(errors) >= set(registries):
        raise Fatal("")
