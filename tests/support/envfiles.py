"""Environment file texts for tests that drive the controller through git."""

from __future__ import annotations

HEADER = "apiVersion: mlflow-gitops/v1\nkind: Environment\n"


def env_files(model: str, production: int, staging: int) -> dict[str, str]:
    """A production and a staging stage environment, each listing `model`."""
    return {
        "environments/production.yaml":
            HEADER + f"target:\n  stage: Production\nmodels:\n  {model}: {production}\n",
        "environments/staging.yaml":
            HEADER + f"target:\n  stage: Staging\nmodels:\n  {model}: {staging}\n",
    }
