"""The vocabulary every other package speaks: frozen values (model), the plan as a value
(plan), diagnostics, the one error hierarchy (errors) and the ports (ports), the typed
protocols through which the loop reaches registries, git, metrics and the forge. Rule: types
and pure helpers only; imports nothing of this project but itself and no client library."""
