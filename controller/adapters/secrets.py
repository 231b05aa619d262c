"""Reading a secret from a file: the one rule every token, webhook secret and password file
follows. A secret file is usually a mounted Kubernetes Secret or written with `echo`, so
surrounding whitespace (the trailing newline, a CRLF) is not part of the secret; what is
inside is taken byte for byte. Read on every use where a rotated Secret must be picked up
without a restart (registry tokens); the callers decide that, not this module.

Errors never carry the file's content: only the flag or setting that named the file, the
path and the operating system's reason."""

from __future__ import annotations

import os
from pathlib import Path

from mlflow_gitops.core.errors import ConfigError

PathLike = str | os.PathLike[str]


def read_secret(path: PathLike) -> str:
    """The secret in `path`, stripped of surrounding whitespace; "" for an empty file.
    Raises OSError (unreadable) or UnicodeDecodeError (not UTF-8), for callers that keep
    going without it."""
    return Path(path).read_text(encoding="utf-8").strip()


def secret_file(path: PathLike, what: str, *, required: bool = True) -> str:
    """`read_secret`, with an unreadable (or, when `required`, empty) file as one ConfigError
    line naming `what` (e.g. "--token-file") and the path."""
    try:
        value = read_secret(path)
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"cannot read {what} {path}: it is not UTF-8 text") from exc
    if required and not value:
        raise ConfigError(f"{what} {path} is empty")
    return value
