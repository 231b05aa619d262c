"""What a pass reads and what a new commit changed (desired.managed)."""

from __future__ import annotations

from dataclasses import replace

from mlflow_gitops.core.model import ModelEntry, frozen_map
from mlflow_gitops.desired.managed import ReadSet, changed_models, focus, read_sets

from tests.support.builders import desired, env


def test_read_sets_name_the_listed_models_and_the_pruning_environments() -> None:
    """Each registry reads the models its environments list (by registered name) and the
    ownership tags of its pruning environments, nothing else."""
    prod = env("production", "stage:Production", {"fraud": 2}, registry="prod", prune=True)
    prod = replace(prod, models=frozen_map({"fraud": ModelEntry(2, 5, "fraud-prod")}))
    state = desired(env("staging", "stage:Staging", {"fraud": 2, "churn": 1}), prod)
    assert read_sets(state) == {
        "default": ReadSet(frozenset({"fraud", "churn"}), frozenset()),
        "prod": ReadSet(frozenset({"fraud-prod"}), frozenset({"production"})),
    }


def test_changed_models_are_the_entries_a_commit_changed_not_moved_lines() -> None:
    """A new version or a new entry counts as changed; an entry that only moved to another
    line does not."""
    before = desired(env("production", "stage:Production", {"a": 1, "b": 1, "c": 1}))
    after = desired(env("production", "stage:Production", {"z": 3, "a": 2, "b": 1, "c": 1}))
    assert changed_models(before, after) == frozenset({"a", "z"})


def test_a_commit_that_changes_more_than_entries_needs_a_full_pass() -> None:
    """An added environment, a changed target, a removal where prune acts, or an environment
    that does not self-heal (its records are kept whole): no subset."""
    base = desired(env("production", "stage:Production", {"a": 1, "b": 1}, prune=True))
    assert changed_models(base, desired(*base.environments,
                                        env("staging", "stage:Staging", {"a": 1}))) is None
    assert changed_models(base, desired(env("production", "stage:Staging",
                                            {"a": 1, "b": 1}, prune=True))) is None
    assert changed_models(base, desired(env("production", "stage:Production", {"a": 1},
                                            prune=True))) is None
    manual = desired(env("production", "stage:Production", {"a": 1}, self_heal=False))
    assert changed_models(manual, desired(env("production", "stage:Production", {"a": 2},
                                              self_heal=False))) is None


def test_focus_keeps_the_keys_in_every_environment_and_turns_prune_off() -> None:
    """The focused state lists only the changed keys, in every environment (so `from`
    still sees its source entry), and never prunes the models it leaves out."""
    state = desired(env("staging", "stage:Staging", {"a": 2, "b": 1}),
                    env("production", "stage:Production", {"a": 1, "b": 1}, prune=True))
    narrowed = focus(state, frozenset({"a"}))
    assert [set(e.models) for e in narrowed.environments] == [{"a"}, {"a"}]
    assert not any(e.sync.prune for e in narrowed.environments)
