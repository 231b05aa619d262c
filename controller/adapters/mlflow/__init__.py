"""MLflow registries: bulk reads of the managed models only (REST fast path, MLflow's own
stores for other URIs), writes, and copies between registries. Rule: the only package that
imports mlflow; MLflow's errors become `core.errors` with the cause chained, credentials
scrubbed."""
