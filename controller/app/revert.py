"""The revert pull request after an automatic rollback: the registry is already back on the
version the failed promotion replaced; this puts git back in line with it, so merging the
pull request (then `release`) ends the incident.

One branch per (environment, model), `rollback/<environment>/<model>`, holding one commit on
the followed branch's tip that sets the model back (the same edit `rollback` makes, comments
kept). The pull request carries a marker naming the failed version: a later pass, a restart
or another replica finds the open one and leaves it alone (never a second pull request for
the same failure); a new failure on the same entry updates the branch and the same pull
request in place. Failures are logged and never stop reconciling."""

from __future__ import annotations

import logging

from mlflow_gitops.app.propose import ControllerProposer, Forge, ref_component
from mlflow_gitops.core.errors import GitOpsError
from mlflow_gitops.core.model import Environment
from mlflow_gitops.desired.edits import promotion_edit
from mlflow_gitops.desired.loader import load_texts

log = logging.getLogger("mlflow_gitops.controller")

MARKER = "<!-- mlflow-gitops:rollback environment={env} model={model} failed={version} -->"


def branch_name(environment: str, model: str) -> str:
    """`rollback/<environment>/<model>`, each name encoded as proposal branches encode it
    (distinct entries never share a branch; every branch is a valid git ref)."""
    return f"rollback/{ref_component(environment)}/{ref_component(model)}"


class RevertPullRequests:
    """Called by the verification step after each automatic rollback."""

    def __init__(self, checkout: ControllerProposer, forge: Forge) -> None:
        self._checkout = checkout  # its clone, fetch and push credentials
        self._forge = forge

    def __call__(self, env: Environment, model: str, bad: int, good: int, reason: str) -> None:
        try:
            url = self.open(env, model, bad, good, reason)
        except GitOpsError as exc:
            log.warning("revert pull request for %s/%s not opened: %s", env.name, model, exc)
            return
        except Exception:  # noqa: BLE001 - a bug here must not stop reconciling
            log.exception("revert pull request for %s/%s failed unexpectedly", env.name, model)
            return
        if url:
            log.info("revert pull request for %s/%s: %s", env.name, model, url,
                     extra={"fields": {"environment": env.name, "model": model, "url": url}})

    def open(self, env: Environment, model: str, bad: int, good: int, reason: str) -> str:
        from mlflow_gitops.adapters.forge import open_pull_request
        from mlflow_gitops.adapters.pulls import pull_requests, update_pull_request

        forge, branch = self._forge, branch_name(env.name, model)
        marker = MARKER.format(env=ref_component(env.name), model=ref_component(model),
                               version=bad)
        open_ones = [p for p in pull_requests(forge.remote_url, branch, forge.token,
                                              forge.api_url) if p.state == "open"]
        if open_ones and marker in open_ones[0].body:
            return open_ones[0].url  # this failure's pull request exists: never a second
        tree = self._checkout.checkout()
        base = tree.rev(f"refs/remotes/origin/{self._checkout.branch}")
        files = tree.files_at(base, self._checkout.folder)
        desired, _ = load_texts(files, commit=base)
        current = desired.by_name().get(env.name) if desired is not None else None
        if desired is None or current is None:
            raise GitOpsError(f"{self._checkout.folder} at {base[:12]} cannot be edited "
                              f"(invalid, or without {env.name})")
        entry = current.models.get(model)
        if entry is not None and entry.version == good:
            return ""  # git already says the version it was rolled back to
        edit = promotion_edit(desired, files, current, model, good)
        title = edit.title("rollback") + " (verification failed)"
        tree.commit_on_branch(branch, base, dict(edit.changed), f"{title}\n\n{reason}")
        tree.force_push("origin", branch)
        body = (f"The controller rolled {model} in {env.name} back from v{bad} to v{good} "
                f"by itself: {reason}\n\nThe registry already serves v{good} and the entry "
                f"is held. Merge this pull request so git says the same, then run "
                f"`mlflow-gitops release {model} --env {env.name}`.{edit.notes}\n\n{marker}\n")
        if open_ones:
            return update_pull_request(forge.remote_url, open_ones[0].number, title, body,
                                       forge.token, forge.api_url)
        return open_pull_request(forge.remote_url, branch, self._checkout.branch, title, body,
                                 forge.token, api_url=forge.api_url)

