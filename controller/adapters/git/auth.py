"""Credentials for one git call.

An HTTPS token is handed to git by a GIT_ASKPASS script in a private temporary folder that
`cat`s the token file, so a rotated Secret is picked up on the next fetch; an SSH key is
copied into that folder with mode 0600 (ssh refuses the group-readable files Secrets are
mounted as) and used through GIT_SSH_COMMAND."""

from __future__ import annotations

import os
import shlex
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from mlflow_gitops.adapters.secrets import read_secret
from mlflow_gitops.core.errors import SourceError

ALLOWED_PROTOCOLS = "file:git:http:https:ssh"  # never ext:: or fd::

#: Opens a credentials session for one git call: (environment, `-c` options).
Auth = Callable[[], AbstractContextManager[tuple[dict[str, str], list[str]]]]


@dataclass(frozen=True)
class GitAuth:
    token_file: Path | None
    ssh_key_file: Path | None
    known_hosts_file: Path | None
    timeout: float
    token_username: str
    default_known_hosts: Path  # trust on first use, remembered next to the cache

    @contextmanager
    def session(self) -> Iterator[tuple[dict[str, str], list[str]]]:
        """The environment and `-c` options for one git call, with a private temp folder
        holding the askpass script or the key copy, removed afterwards."""
        env = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "SSH_ASKPASS": "",
               "GIT_ALLOW_PROTOCOL": ALLOWED_PROTOCOLS}
        options: list[str] = []
        with tempfile.TemporaryDirectory(prefix="mlflow-gitops-") as tmp:  # mode 0700
            if self.token_file is not None:
                if not os.access(self.token_file, os.R_OK):
                    raise SourceError(f"cannot read the git token file {self.token_file}")
                env["GIT_ASKPASS"] = str(self._askpass_script(Path(tmp)))
                options += ["-c", "credential.helper="]  # no helper may store the token
            if self.ssh_key_file is not None or self.known_hosts_file is not None:
                env["GIT_SSH_COMMAND"] = self._ssh_command(Path(tmp))
            yield env, options

    def _askpass_script(self, folder: Path) -> Path:
        script = folder / "askpass"
        script.write_text(
            "#!/bin/sh\n"
            'case "$1" in\n'
            f"  Username*) echo {shlex.quote(self.token_username)} ;;\n"
            f"  *) exec cat {shlex.quote(str(self.token_file))} ;;\n"
            "esac\n")
        script.chmod(stat.S_IRWXU)
        return script

    def _ssh_command(self, folder: Path) -> str:
        parts = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={int(self.timeout)}"]
        if self.ssh_key_file is not None:
            try:
                key_bytes = self.ssh_key_file.read_bytes()
            except OSError as exc:
                raise SourceError(f"cannot read the SSH key file {self.ssh_key_file}: "
                                  f"{exc.strerror}") from None
            key = folder / "id"
            fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(key_bytes)
            parts += ["-i", str(key), "-o", "IdentitiesOnly=yes"]
        if self.known_hosts_file is not None:
            parts += ["-o", f"UserKnownHostsFile={self.known_hosts_file}",
                      "-o", "StrictHostKeyChecking=yes"]
        else:  # trust on first use, remembered next to the cache
            parts += ["-o", f"UserKnownHostsFile={self.default_known_hosts}",
                      "-o", "StrictHostKeyChecking=accept-new"]
        return " ".join(shlex.quote(p) for p in parts)

    def token(self) -> str | None:
        if self.token_file is None:
            return None
        try:
            return read_secret(self.token_file) or None
        except (OSError, UnicodeDecodeError):
            return None
