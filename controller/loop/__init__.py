"""Running the plan against the world: the executor, a reconcile pass as phases that return
values, the controller's pass and loop, leader election, triggers, feedback bookkeeping and
the views the HTTP server shows. Rule: reaches registries, git, Kubernetes and HTTP only
through the protocols in `core.ports`; never imports an adapter or a client library."""
