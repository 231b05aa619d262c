"""Self-repair of the git cache behind GitSource.

The cache is a disposable copy of the remote, so nothing a killed git or a full disk leaves
behind may fail fetches forever:
- lock files (`refs/remotes/origin/main.lock`, `packed-refs.lock`, `shallow.lock`,
  `index.lock`, `config.lock`, …) that no running git holds are removed before a fetch: any
  lock when this process owns the cache (an exclusive `flock` on a file next to it, so no
  other git can be working in it), otherwise only locks older than STALE_LOCK_SECONDS;
- temporary objects (`tmp_obj_*`, `tmp_pack_*`, `tmp_idx_*`, `*.tmp`) and the unreachable
  objects of a fetch that failed half-way are removed, so a full disk frees itself once the
  big commit is gone from the branch;
- a cache that still cannot fetch while the remote answers (corrupt objects, a broken
  config) is replaced: a fresh clone is made next to it and swapped in (`swap`).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from pathlib import Path
from typing import IO

STALE_LOCK_SECONDS = 120.0
_TEMP_PREFIXES = ("tmp_obj_", "tmp_pack_", "tmp_idx_", "tmp_rev_", "tmp_mtimes_")


class Owner:
    """An exclusive advisory lock on `<cache>.owner`, held for the life of the process."""

    def __init__(self, cache: Path) -> None:
        self.path = cache.with_name(cache.name + ".owner")
        self._file: IO[str] | None = None

    def held(self) -> bool:
        """True when this process owns the cache (taking the lock the first time)."""
        if self._file is not None:
            return True
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(self.path, "a")  # noqa: SIM115 - kept open while we own the cache
        except OSError:
            return False
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._file = handle
        return True

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing drops the flock
            self._file = None


def _walk_files(root: Path) -> list[Path]:
    """Every file of a bare repository except the loose objects (`objects/xx/<sha>`), which
    are many and never locks."""
    out: list[Path] = []
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        if here.parent == root / "objects":
            out.extend(here / f for f in files if f.startswith(_TEMP_PREFIXES))
            dirs.clear()
            continue
        out.extend(here / f for f in files)
    return out


def remove_stale_locks(root: Path, owned: bool, now: float | None = None) -> list[str]:
    """Remove `*.lock` files no running git can hold; the removed paths, relative to root."""
    if not root.is_dir():
        return []
    now = time.time() if now is None else now
    removed = []
    for path in _walk_files(root):
        if not path.name.endswith(".lock"):
            continue
        try:
            if owned or now - path.stat().st_mtime > STALE_LOCK_SECONDS:
                path.unlink()
                removed.append(path.relative_to(root).as_posix())
        except OSError:
            continue  # gone already, or not ours to remove: git will say so
    return sorted(removed)


def remove_temporary_objects(root: Path) -> list[str]:
    """Remove the half-written objects and packs of a fetch that died; removed paths."""
    if not root.is_dir():
        return []
    removed = []
    for path in _walk_files(root / "objects") if (root / "objects").is_dir() else []:
        if path.name.startswith(_TEMP_PREFIXES) or path.name.endswith(".tmp"):
            try:
                path.unlink()
                removed.append(path.relative_to(root).as_posix())
            except OSError:
                continue
    return sorted(removed)


def looks_like_cache(root: Path) -> bool:
    """A bare repository this source made (worth replacing when broken), as opposed to a
    folder of someone's files (never wiped)."""
    return (root / "objects").is_dir() and (root / "refs").is_dir()


def fresh_path(root: Path) -> Path:
    """A new, empty sibling folder for a replacement clone."""
    path = root.with_name(f"{root.name}.fresh-{os.getpid()}-{time.monotonic_ns()}")
    shutil.rmtree(path, ignore_errors=True)
    return path


def swap(root: Path, fresh: Path) -> None:
    """Put the clone in `fresh` where `root` was, then delete the old cache."""
    old = root.with_name(f"{root.name}.old-{os.getpid()}-{time.monotonic_ns()}")
    if root.exists():
        root.rename(old)
    fresh.rename(root)
    shutil.rmtree(old, ignore_errors=True)


def discard(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def leftovers(root: Path) -> list[Path]:
    """Replacement clones or old caches a killed process left next to `root`."""
    prefix = (f"{root.name}.fresh-", f"{root.name}.old-")
    if not root.parent.is_dir():
        return []
    return [p for p in root.parent.iterdir() if p.name.startswith(prefix)]
