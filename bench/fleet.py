"""The benchmark's fleet: the seeded registry state and the environment files that describe
it. One place defines both, so 'converged' means the same thing everywhere."""

from __future__ import annotations

from dataclasses import dataclass

from mlflow_gitops.core.model import DesiredState
from mlflow_gitops.desired.loader import load_texts

HEADER = "apiVersion: mlflow-gitops/v1\nkind: Environment\n"
SEED_FORMAT = 1  # bump when the seeded state changes, so an old database is not reused


@dataclass(frozen=True)
class Fleet:
    """`models` registered models × `versions` versions each. Seeded (converged) state: the
    second-to-last version in Production and @champion, the last one in Staging, the rest in
    stage None, no tags."""

    models: int = 1000
    versions: int = 5
    prefix: str = "bench"

    @property
    def production(self) -> int:
        return self.versions - 1

    @property
    def staging(self) -> int:
        return self.versions

    @property
    def champion(self) -> int:
        return self.versions - 1

    def names(self) -> list[str]:
        return [f"{self.prefix}-{i:04d}" for i in range(self.models)]

    def key(self, mlflow_version: str) -> dict[str, object]:
        """What must match for a seeded database to be reused."""
        return {"models": self.models, "versions": self.versions, "prefix": self.prefix,
                "seed_format": SEED_FORMAT, "mlflow": mlflow_version}

    def seeded_stage(self, version: int) -> str:
        if version == self.production:
            return "Production"
        if version == self.staging:
            return "Staging"
        return "None"

    # -- desired state ---------------------------------------------------------------------

    def files(self, production: dict[str, int] | None = None,
              champion: dict[str, int] | None = None) -> dict[str, str]:
        """The three environment files; `production`/`champion` override single models."""
        names = self.names()
        prod = {n: self.production for n in names} | (production or {})
        champ = {n: self.champion for n in names} | (champion or {})
        stag = {n: self.staging for n in names}
        return {
            "environments/production.yaml": _env("stage: Production", prod),
            "environments/staging.yaml": _env("stage: Staging", stag),
            "environments/champion.yaml": _env("alias: champion", champ),
        }

    def changed(self, count: int) -> tuple[dict[str, int], dict[str, int]]:
        """A commit that changes `count` models: each rolls Production and @champion back one
        version (promote v-1, archive the old one, move the alias): 3 changes per model."""
        picked = self.names()[:count]
        back = self.production - 1
        return {n: back for n in picked}, {n: back for n in picked}

    def desired(self, files: dict[str, str], commit: str) -> DesiredState:
        state, diagnostics = load_texts(files, commit=commit)
        if state is None:
            raise RuntimeError("bench environment files invalid: "
                               + "; ".join(str(d) for d in diagnostics[:3]))
        return state


def _env(target: str, models: dict[str, int]) -> str:
    body = "".join(f"  {name}: {version}\n" for name, version in sorted(models.items()))
    return f"{HEADER}target:\n  {target}\nmodels:\n{body}"
