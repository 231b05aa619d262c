"""What git says about the commits that brought a change: which commit last changed an
entry of an environment file, which of the branch's own (first-parent) commits brought it,
and whether their signatures verify.

Signatures are checked by git itself, as `git verify-commit` does: SSH signatures against
an allowed-signers file (`-c gpg.ssh.allowedSignersFile=…`, ssh-keygen does the crypto),
GPG signatures against a private keyring holding only the allowed keys (GNUPGHOME). Nothing
here verifies a signature by hand; it reads git's `%G?` (good/bad/unknown/none), `%GK` (the
key) and `%GS` (the allowed signer) for each commit. A commit whose tree was altered after
signing reads `B`; a key not in the file reads `U` (SSH) or `E` (GPG, key not in the ring)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from mlflow_gitops.core.errors import ConfigError, SourceError
from mlflow_gitops.core.trust import Signature
from mlflow_gitops.desired.history import Revision, listed

HISTORY_DEPTH = 200  # first-parent commits of a file searched for an entry's last change
TIMEOUT = 30.0
_SSH = b"-----BEGIN SSH SIGNATURE-----"
_PGP = b"-----BEGIN PGP SIGNATURE-----"


class Signatures:
    """Checks signatures in the repository at `repo`; `allowed_signers` (SSH) and
    `gnupg_home` (a keyring of the allowed GPG keys) are the only keys trusted."""

    def __init__(self, allowed_signers: str | None, gnupg_home: str | None,
                 empty_home: str) -> None:
        self.allowed_signers = allowed_signers
        self.gnupg_home = gnupg_home or empty_home  # never the process's own keyring

    def check_readable(self) -> None:
        """ConfigError when the allowed-signers file cannot be read: fail closed."""
        if self.allowed_signers is None:
            return
        try:
            text = Path(self.allowed_signers).read_text(encoding="utf-8")
        except (OSError, UnicodeError) as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            raise ConfigError(f"trust.signed_commits.allowed_signers_file "
                              f"{self.allowed_signers} cannot be read ({reason})") from None
        if not any(line.strip() and not line.lstrip().startswith("#")
                   for line in text.splitlines()):
            raise ConfigError(f"trust.signed_commits.allowed_signers_file "
                              f"{self.allowed_signers} lists no key")

    def verify(self, repo: Path, shas: Sequence[str]) -> dict[str, Signature]:
        """Each commit's signature as git checks it; SourceError when git cannot say."""
        self.check_readable()
        signers = self.allowed_signers or os.devnull
        out = _git(repo, ["-c", f"gpg.ssh.allowedSignersFile={signers}",
                          "-c", "gpg.ssh.revocationFile=", "-c", "gpg.program=gpg",
                          "-c", "gpg.ssh.program=ssh-keygen",
                          "log", "--no-walk=unsorted", "--format=%H%x1f%G?%x1f%GK%x1f%GS%x1e",
                          *shas, "--"], {"GNUPGHOME": self.gnupg_home})
        found: dict[str, Signature] = {}
        for record in out.decode("utf-8", "replace").split("\x1e"):
            fields = record.strip("\n").split("\x1f")
            if len(fields) != 4:
                continue
            sha, status, key, signer = fields
            kind = _kind(repo, sha) if status != "N" else ""
            trusted = (status == "G" and bool(signer)) if kind == "ssh" else (
                kind == "gpg" and status in ("G", "U"))
            found[sha] = Signature(sha, status, key, signer, kind, trusted)
        return found


def change_of(repo: Path, relpath: str, key: str, version: int, tip: str) -> tuple[str, str]:
    """(the commit that last changed entry `key` of `relpath` to `version`, the branch's
    first-parent commit that brought it). For a merged pull request the first is on the
    pull request's branch and the second is the merge; for a direct push, a squash or a
    rebase merge, both are the same commit."""
    line = _versions(repo, ["--first-parent", f"-n{HISTORY_DEPTH}", tip], relpath, key)
    if not line or line[0][1] != version:
        raise SourceError(f"{relpath} at {tip[:12]} does not assign v{version} to {key}")
    merge = _run_start(line, version)
    parents = _git(repo, ["rev-list", "--parents", "-n1", merge]).decode().split()[1:]
    if len(parents) < 2:
        return merge, merge
    side = _versions(repo, [f"-n{HISTORY_DEPTH}", f"{parents[0]}..{parents[1]}"], relpath, key)
    if not side or side[0][1] != version:
        return merge, merge  # the merge itself changed the entry (e.g. a conflict resolved)
    return _run_start(side, version), merge


def _run_start(rows: list[tuple[str, int | None]], version: int) -> str:
    """The oldest commit of the newest run of rows that assign `version`."""
    start = rows[0][0]
    for sha, value in rows:
        if value != version:
            break
        start = sha
    return start


def _versions(repo: Path, walk: list[str], relpath: str, key: str
              ) -> list[tuple[str, int | None]]:
    """Newest first: (commit, the version it assigned to `key`) for each commit of `walk`
    that touched `relpath` and whose file validates (an invalid one assigned nothing)."""
    shas = _git(repo, ["log", "--format=%H", *walk, "--", relpath]).decode().split()
    if not shas:
        return []
    texts = _blobs(repo, [f"{sha}:{relpath}" for sha in shas])
    rows: list[tuple[str, int | None]] = []
    epoch = datetime.fromtimestamp(0, timezone.utc)
    for sha, text in zip(shas, texts, strict=True):
        versions = listed(Revision(sha, "", epoch, "", text), relpath)
        if versions is not None:
            rows.append((sha, versions.get(key)))
    return rows


def _blobs(repo: Path, specs: list[str]) -> list[str | None]:
    """The text at each `commit:path` (None where the commit deleted it), in one git call."""
    out = _git(repo, ["cat-file", "--batch"], stdin="\n".join(specs) + "\n")
    texts: list[str | None] = []
    pos = 0
    for _ in specs:
        end = out.index(b"\n", pos)
        header = out[pos:end].split()
        pos = end + 1
        if len(header) < 3 or header[-1] == b"missing":
            texts.append(None)
            continue
        size = int(header[2])
        texts.append(out[pos:pos + size].decode("utf-8", "replace"))
        pos += size + 1
    return texts


def _kind(repo: Path, sha: str) -> str:
    """ssh or gpg: the kind of signature in the commit's header."""
    raw = _git(repo, ["cat-file", "commit", sha])
    if _SSH in raw:
        return "ssh"
    return "gpg" if _PGP in raw else ""


def _git(repo: Path, args: list[str], env: dict[str, str] | None = None,
         stdin: str | None = None) -> bytes:
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, timeout=TIMEOUT,
            input=stdin.encode() if stdin is not None else None,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0", **(env or {})}, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SourceError(f"git {args[0]} failed in the git cache ({type(exc).__name__})") \
            from None
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise SourceError(f"git could not read the commits of a guarded change: "
                          f"{detail[-1][:200] if detail else f'exit {done.returncode}'}")
    return done.stdout
