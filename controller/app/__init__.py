"""The use cases, between the CLI and the adapters: each is a function (or a small class)
that takes ports and values and returns a value for the CLI to render or the controller to
log. The CLI only parses arguments and renders; adapters only adapt; the pass itself
(gather → plan → execute → outcome) is mlflow_gitops.loop.reconciler."""
