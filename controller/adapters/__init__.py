"""Adapters: the only modules that do I/O (MLflow, git, Kubernetes, HTTP, forges, metrics,
logs). Rule: each implements a port of `core.ports` or serves the CLI, wraps its client
library's errors into `core.errors` with the cause chained, and never lets a credential reach
an error, a log line or `/status`; everything below (loop, planning, policy, desired, core)
imports no client library."""
