"""One controller pass (Cycle) over an in-memory git source and registry: one outcome per
pass, whichever of its phases wrote."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from mlflow_gitops.loop.cycle import Cycle
from mlflow_gitops.loop.report import Reporter

from tests.support.builders import live
from tests.support.envfiles import env_files
from tests.support.memory_registry import MemoryRegistry


class Source:
    """A branch whose tip is the last commit pushed."""

    def __init__(self) -> None:
        self.commits: dict[str, dict[str, str]] = {}
        self.tip = ""

    def push(self, sha: str, files: dict[str, str]) -> None:
        self.commits[sha], self.tip = files, sha

    def fetch(self) -> str:
        return self.tip

    def read_environment_files(self, sha: str) -> dict[str, str]:
        return dict(self.commits[sha])


class Metrics:
    """Records what the reporter counts (the MetricsPort)."""

    def __init__(self) -> None:
        self.transitions: Counter[tuple[str, str]] = Counter()
        self.applied_at: list[float | None] = []
        self.results: list[str] = []
        self.invalid = False

    def reconciled(self, result: str, seconds: float) -> None:
        self.results.append(result)

    def transition(self, environment: str, action: str, count: int = 1) -> None:
        self.transitions[(environment, action)] += count

    def out_of_sync(self, counts: Mapping[str, int]) -> None: ...

    def states(self, counts: Mapping[tuple[str, str], int]) -> None: ...

    def applied(self, timestamp: float | None = None) -> None:
        self.applied_at.append(timestamp)

    def commit(self, sha: str) -> None: ...

    def leader(self, is_leader: bool) -> None: ...

    def invalid_commit(self, invalid: bool) -> None:
        self.invalid = invalid


def _cycle() -> tuple[Cycle, Source, MemoryRegistry, Metrics]:
    registry = MemoryRegistry.from_snapshot(live({"m": {1: "None", 2: "None", 3: "None"}}))
    source, metrics = Source(), Metrics()
    cycle = Cycle(source, {"default": registry}, Reporter(metrics))
    return cycle, source, registry, metrics


def test_a_new_commits_changes_are_counted_once_in_the_passs_outcome() -> None:
    """The commit-first part applies a new commit's changes (told as they land) and the full
    pass after it applies nothing; the pass's one outcome carries them, counted once."""
    cycle, source, registry, metrics = _cycle()
    source.push("c1", env_files("m", production=1, staging=2))
    assert cycle.run("startup", may_write=lambda: True)
    assert metrics.transitions == {("production", "promote"): 1, ("staging", "promote"): 1}
    source.push("c2", env_files("m", production=2, staging=3))
    assert cycle.run("interval", may_write=lambda: True)
    assert registry.stages["m"] == {1: "Archived", 2: "Production", 3: "Staging"}
    assert metrics.transitions == {("production", "promote"): 2, ("staging", "promote"): 2,
                                   ("production", "archive"): 1}
    # The startup pass's writes are told with its outcome; the first part's as each lands.
    assert len(metrics.applied_at) == 1 + 3 and metrics.results == ["success", "success"]
    assert cycle.state.last_applied_commit == "c2"
    result = cycle.state.last_result
    assert result is not None and len(result.written) == 3  # the first part's, merged in


def test_an_invalid_commit_keeps_the_last_good_state_and_writes_nothing() -> None:
    """A commit that does not validate is reported; the last good state stays in force."""
    cycle, source, registry, metrics = _cycle()
    source.push("c1", env_files("m", production=1, staging=2))
    cycle.run("startup", may_write=lambda: True)
    calls = len(registry.calls)
    source.push("bad", {"environments/production.yaml": "models: [not, a, map]\n"})
    cycle.run("interval", may_write=lambda: True)
    assert cycle.state.invalid_commit == "bad" and metrics.invalid
    assert cycle.state.last_applied_commit == "c1" and metrics.results[-1] == "invalid"
    assert [c for c in registry.calls[calls:] if c[0] != "snapshot"] == []


def test_a_replica_that_may_not_write_writes_nothing() -> None:
    """With `may_write` saying no, the pass plans but writes nothing and counts nothing."""
    cycle, source, registry, metrics = _cycle()
    source.push("c1", env_files("m", production=1, staging=2))
    cycle.run("startup", may_write=lambda: False)
    assert registry.stages["m"] == {1: "None", 2: "None", 3: "None"}
    assert not metrics.transitions and not metrics.applied_at
