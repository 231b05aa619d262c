"""The write gate: a new commit's changes are applied while a drift check of every managed
model is still running, and nothing either of them writes may undo the other.

Every desired state the controller loads gets the next *generation* number. A commit's
changed models are applied under the gate, which marks them touched by that generation;
the drift check writes each model under the gate too, and skips a model touched by a
generation newer than the one it planned with: its snapshot of that model may predate the
commit, so its "heal" could put back what the commit just changed. A skipped model is
planned again by the pass that follows (a trigger is pending whenever a commit came in).
One lock for all writes: no two writes at once, whichever thread makes them."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

ModelKey = tuple[str, str]  # (registry, registered model name)


class WriteGate:
    """Shared by the pass and the commit lane of one controller. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._touched: dict[ModelKey, int] = {}  # model -> newest generation that wrote it

    @contextmanager
    def commit(self, generation: int, models: Iterable[ModelKey]) -> Iterator[None]:
        """Hold the gate while a commit reads, plans and writes `models`; they count as
        touched by `generation` from the moment the gate is held (a drift write still in
        flight finishes first, so the commit's read sees it)."""
        with self._lock:
            for key in models:
                self._touched[key] = max(generation, self._touched.get(key, 0))
            yield

    @contextmanager
    def model(self, generation: int, registry: str, model: str) -> Iterator[bool]:
        """Hold the gate for one model's writes planned with `generation`; yields False when
        a newer commit has touched the model since (do not write it)."""
        with self._lock:
            yield self._touched.get((registry, model), 0) <= generation

    def forget_before(self, generation: int) -> None:
        """A pass planned with `generation` starts: older marks can no longer matter."""
        with self._lock:
            self._touched = {k: g for k, g in self._touched.items() if g > generation}

    def touched_after(self, generation: int) -> frozenset[ModelKey]:
        """The models a commit newer than `generation` has touched (for reports)."""
        with self._lock:
            return frozenset(k for k, g in self._touched.items() if g > generation)
