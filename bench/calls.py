"""Counting HTTP calls from the server side: the MLflow server (uvicorn) writes one access-log
line per request it answered, so every timed run is also a counted run with nothing in the
request path. The read/write split is the CountingProxy's, which cross-checks these counts."""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path

from tests.support.counting_proxy import WRITE_PATHS

_REQUEST = re.compile(rb'"(GET|POST|PATCH|PUT|DELETE) ([^ ?"]+)[^"]* HTTP/[0-9.]+"')


def is_write(method: str, path: str) -> bool:
    return (method != "GET" and not path.endswith("/search")
            and any(w in path for w in WRITE_PATHS))


class ServerCalls:
    def __init__(self, access_log: Path):
        self.log = access_log
        self.offset = 0
        self.mark()

    def mark(self) -> None:
        """Start counting from now."""
        self.offset = self.log.stat().st_size

    def since_mark(self, settle: float = 0.1) -> Counter[tuple[str, str]]:
        """Requests logged since `mark()`; waits until the log stops growing (uvicorn logs a
        request as its response starts, a moment before the client has read it)."""
        size = -1
        while True:
            time.sleep(settle)
            now = self.log.stat().st_size
            if now == size:
                break
            size = now
        with self.log.open("rb") as fh:
            fh.seek(self.offset)
            data = fh.read(size - self.offset)
        counts: Counter[tuple[str, str]] = Counter()
        for match in _REQUEST.finditer(data):
            counts[(match.group(1).decode(), match.group(2).decode())] += 1
        return counts


def split(counts: Counter[tuple[str, str]]) -> tuple[int, int]:
    """(reads, writes)."""
    writes = sum(n for (method, path), n in counts.items() if is_write(method, path))
    return sum(counts.values()) - writes, writes
