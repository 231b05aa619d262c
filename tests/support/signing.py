"""Real commit signing for tests: SSH keys made by ssh-keygen, an allowed-signers file, and
commits signed by git itself (gpg.format ssh, user.signingkey, commit -S); GPG keys made by
gpg in a throwaway home when gpg is installed."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support.gitrepos import git


@dataclass(frozen=True)
class SshKey:
    private: Path
    public: str  # "ssh-ed25519 AAAA… comment"


def ssh_key(folder: Path, name: str) -> SshKey:
    """A new ed25519 key pair without a passphrase."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)],
                   check=True)
    return SshKey(path, (folder / f"{name}.pub").read_text().strip())


def allowed_signers(path: Path, *keys: tuple[str, SshKey]) -> Path:
    """An allowed-signers file: one `principal key` line per (principal, key)."""
    path.write_text("".join(f"{who} {key.public}\n" for who, key in keys))
    return path


def commit_signed(work: Path, message: str, key: SshKey | None) -> str:
    """Commit what is staged, signed with `key` (None: unsigned); its sha."""
    if key is None:
        git(work, "-c", "commit.gpgsign=false", "commit", "-q", "-m", message)
    else:
        git(work, "-c", "gpg.format=ssh", "-c", f"user.signingkey={key.private}",
            "commit", "-q", "-S", "-m", message)
    return git(work, "rev-parse", "HEAD")


def merge_signed(work: Path, branch: str, message: str, key: SshKey | None) -> str:
    """Merge `branch` into the current branch with a merge commit, signed with `key`."""
    sign = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={key.private}"] if key else []
    git(work, *sign, "merge", "-q", "--no-ff", *(["-S"] if key else []), "-m", message, branch)
    return git(work, "rev-parse", "HEAD")


def tamper_tree(work: Path, sha: str, other_tree_of: str) -> str:
    """A copy of signed commit `sha` whose tree is replaced by `other_tree_of`'s, the
    signature left as it was (what a compromised git host could serve); its sha."""
    raw = subprocess.run(["git", "cat-file", "commit", sha], cwd=work, check=True,
                         capture_output=True).stdout
    tree = git(work, "rev-parse", f"{other_tree_of}^{{tree}}").encode()
    lines = raw.split(b"\n")
    assert lines[0].startswith(b"tree ")
    forged = b"\n".join([b"tree " + tree, *lines[1:]])
    return subprocess.run(["git", "hash-object", "-t", "commit", "-w", "--stdin"], cwd=work,
                          input=forged, check=True, capture_output=True).stdout.decode().strip()


def gpg_available() -> bool:
    return shutil.which("gpg") is not None


def gpg_key(home: Path, email: str) -> tuple[str, Path]:
    """A new GPG signing key (no passphrase) in `home`: (fingerprint, armored public key)."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    env = {**os.environ, "GNUPGHOME": str(home)}
    subprocess.run(["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "",
                    "--quick-gen-key", email, "ed25519", "sign", "never"],
                   check=True, capture_output=True, env=env)
    listed = subprocess.run(["gpg", "--batch", "--with-colons", "--list-keys", email],
                            check=True, capture_output=True, text=True, env=env).stdout
    fingerprint = next(line.split(":")[9] for line in listed.splitlines()
                       if line.startswith("fpr:"))
    public = home / f"{email}.asc"
    public.write_bytes(subprocess.run(["gpg", "--batch", "--armor", "--export", fingerprint],
                                      check=True, capture_output=True, env=env).stdout)
    return fingerprint, public


def commit_gpg(work: Path, message: str, home: Path, fingerprint: str) -> str:
    """Commit what is staged, GPG-signed with the key `fingerprint` of `home`."""
    git(work, "-c", "gpg.format=openpgp", "-c", f"user.signingkey={fingerprint}", "commit",
        "-q", "-S", "-m", message, env={"GNUPGHOME": str(home)})
    return git(work, "rev-parse", "HEAD")


def stop_gpg_agents(*homes: Path) -> None:
    """Stop the gpg-agent that key generation started in each home (it outlives gpg)."""
    for home in homes:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"],
                       capture_output=True, check=False)
