"""A registry slowed on purpose: the CountingProxy in front of the real MLflow server, with
rules that hold back or delay the answers to chosen requests. The request reaches the server
at once and its answer is read; only handing the answer back waits. So a held read returns
what the registry held *before* anything that happens while it waits: exactly the stale
snapshot of a long drift check that a newer commit overtakes. Every request is recorded
(method, path with query, body) so a test can say what was written and in which order."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

from tests.support.counting_proxy import CountingProxy

Match = Callable[[str, str], bool]  # (method, path with query) -> applies


def searches_naming_at_least(count: int) -> Match:
    """Bulk reads (`.../search` whose filter names at least `count` models): a pass over
    many models, not the read of the few a new commit changed."""
    def match(method: str, path: str) -> bool:
        if method != "GET" or not urlsplit(path).path.endswith("/search"):
            return False
        filters = parse_qs(urlsplit(path).query).get("filter", [])
        return any(f.count("'") // 2 >= count for f in filters)
    return match


class Rule:
    """Answers that match wait: until `release()` (held), or `seconds` (delayed)."""

    def __init__(self, match: Match, seconds: float | None, limit: float = 120.0) -> None:
        self.match = match
        self.seconds = seconds
        self.limit = limit  # a held answer is let go after this, so no test hangs forever
        self.reached = threading.Event()  # set when a matching answer starts to wait
        self.hits = 0
        self._released = threading.Event()

    def release(self) -> None:
        self._released.set()

    @property
    def released(self) -> bool:
        return self._released.is_set()

    def wait(self) -> None:
        self.hits += 1
        self.reached.set()
        if self.seconds is not None:
            time.sleep(self.seconds)
        else:
            self._released.wait(self.limit)


class SlowProxy(CountingProxy):
    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self.rules: list[Rule] = []
        self.requests: list[tuple[str, str, bytes | None]] = []
        self._log_lock = threading.Lock()

    def hold(self, match: Match) -> Rule:
        """Hold matching answers until the rule is released."""
        rule = Rule(match, None)
        self.rules.append(rule)
        return rule

    def delay(self, match: Match, seconds: float) -> Rule:
        """Delay matching answers by `seconds` each."""
        rule = Rule(match, seconds)
        self.rules.append(rule)
        return rule

    def release_all(self) -> None:
        for rule in self.rules:
            rule.release()

    def answered(self, method: str, path: str, body: bytes | None) -> None:
        with self._log_lock:
            self.requests.append((method, path, body))
        for rule in list(self.rules):
            if rule.match(method, path):
                rule.wait()

    def written(self, endpoint: str) -> list[dict[str, object]]:
        """The JSON bodies of the writes to `endpoint` (e.g. "registered-models/alias"), in
        the order the server received them."""
        with self._log_lock:
            seen = list(self.requests)
        return [json.loads(body) for method, path, body in seen
                if method != "GET" and body and urlsplit(path).path.endswith(endpoint)]
