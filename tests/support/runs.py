"""Model versions the way users make them: a real run with logged metrics and a model
artifact (a local file under the server's artifact root), registered from `runs:/`."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Any


def logged_version(client: Any, name: str, metrics: dict[str, float] | None = None,
                   tags: dict[str, str] | None = None, stage: str | None = None) -> int:
    """A run logging `metrics` and a `model/` artifact, registered as a new version of
    `name` (created if needed) with `tags`; the version number."""
    import warnings

    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name("policy-tests")
    experiment_id = (experiment.experiment_id if experiment is not None
                     else client.create_experiment("policy-tests"))
    run = client.create_run(experiment_id)
    run_id = run.info.run_id
    for key, value in (metrics or {}).items():
        client.log_metric(run_id, key, value)
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "model"
        model.mkdir()
        (model / "MLmodel").write_text(f"artifact_path: model\nrun_id: {run_id}\n")
        (model / "weights.bin").write_bytes(b"\x00\x01" * 64)
        client.log_artifacts(run_id, str(model), "model")
    client.set_terminated(run_id)
    with contextlib.suppress(MlflowException):  # already there
        client.create_registered_model(name)
    mv = client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id,
                                     tags=tags or {})
    if stage:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            client.transition_model_version_stage(name, mv.version, stage)
    return int(mv.version)
