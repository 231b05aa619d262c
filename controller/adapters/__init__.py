"""Adapters: the only modules that do I/O (MLflow, git, Kubernetes, HTTP, forges). Each wraps
its client library's errors into mlflow_gitops.core.errors with the cause chained, so the pure core
(model, desired, planner, plan, render, policy) never imports a client library."""
