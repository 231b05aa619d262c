"""The edit a promotion makes to the environment files, as a value: the one-line change of
the version (comments and layout kept), the version leaving any other stage environment of
the same registry (a version holds one stage), and the pull request's title. `promote`,
`rollback` and `propose` all make their commits from it, so the three can never differ."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mlflow_gitops.core.model import DesiredState, EntryKind, Environment
from mlflow_gitops.desired import yamledit


@dataclass(frozen=True)
class Edit:
    environment: str
    model: str
    version: int
    current: int | None  # what the file assigned before
    changed: Mapping[str, str]  # repo-relative path → the file's new text
    moved_out: tuple[str, ...]  # environments the version leaves in the same commit

    @property
    def before(self) -> str:
        return f"v{self.current}" if self.current else "unassigned"

    def title(self, kind: str) -> str:
        """The commit subject and pull request title (`kind`: promote or rollback)."""
        if kind == "rollback":
            return f"Roll back {self.model} in {self.environment}: {self.before} → " \
                   f"v{self.version}"
        return f"Promote {self.model} to v{self.version} in {self.environment} " \
               f"({self.before} → v{self.version})"

    @property
    def notes(self) -> str:
        """Lines for the commit message and pull request body after the title."""
        return "".join(f"\n{self.model} v{self.version} leaves {name}: a version holds one "
                       "stage." for name in self.moved_out)


def promotion_edit(desired: DesiredState, files: Mapping[str, str], env: Environment,
                   model: str, version: int, kind: EntryKind | None = None) -> Edit:
    """Set `model` to `version` in `env`'s file (under `prompts:` for a prompt: the section
    the file lists it in, else `kind`); with a stage target, remove it from every other
    stage environment of the same registry that assigns that version."""
    entry = env.models.get(model)
    section = "prompts" if (entry.kind if entry else kind) == "prompt" else "models"
    changed = {env.file: yamledit.set_model_version(files[env.file], model, version, section)}
    moved_out = []
    if env.target.kind == "stage":
        for other in desired.environments:
            found = other.models.get(model)
            if (other.name != env.name and other.target.kind == "stage"
                    and other.registry == env.registry and found and found.version == version):
                changed[other.file] = yamledit.remove_model(files[other.file], model)
                moved_out.append(other.name)
    return Edit(env.name, model, version, entry.version if entry else None, changed,
                tuple(moved_out))
