"""mlflow-gitops: which model version serves where lives in git; a reconcile loop makes the
MLflow registry follow. The pure core (model, desired, planner, plan, render, policy) does no
I/O; adapters/ talk to MLflow, git, Kubernetes and HTTP; cli and runner compose the two."""

__version__ = "0.1.0"
