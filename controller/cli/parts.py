"""The controller's parts that `run` composes, each built from its flags and the config
file with its types spelled out: the ledger, the verification step and its revert pull
requests, the proposal rounds, leader election and Kubernetes Events (the promotion policy
with trust at apply: cli.trust). Imports are late: the slim install
lacks the controller's extra libraries until `run` is used."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mlflow_gitops.adapters.secrets import read_secret
from mlflow_gitops.cli.common import usage_error

if TYPE_CHECKING:
    from mlflow_gitops.adapters.config import ControllerConfig
    from mlflow_gitops.adapters.git.source import GitSource
    from mlflow_gitops.adapters.metrics import Metrics
    from mlflow_gitops.app.propose import ControllerProposer
    from mlflow_gitops.app.revert import RevertPullRequests
    from mlflow_gitops.core.ports import RegistryPort
    from mlflow_gitops.loop.delivery import DeliveryWatch
    from mlflow_gitops.loop.leader import LeaderElector
    from mlflow_gitops.loop.ledger import Ledger
    from mlflow_gitops.loop.report import EventSink
    from mlflow_gitops.loop.triggers import Trigger
    from mlflow_gitops.loop.verification import Verifier
    from mlflow_gitops.planning.ledger import Interval

log = logging.getLogger("mlflow_gitops.run")


def ledger(config: ControllerConfig, registries: Mapping[str, RegistryPort],
           metrics: Metrics) -> tuple[Ledger | None, DeliveryWatch | None]:
    """The ledger writer (this replica named by its host name: the pod's name) and the
    delivery figures read from it; (None, None) with `ledger: {enabled: false}`."""
    import socket

    from mlflow_gitops.adapters.mlflow.ledger import MlflowLedger
    from mlflow_gitops.cli.registries import mlflow_adapter
    from mlflow_gitops.loop.delivery import DeliveryWatch
    from mlflow_gitops.loop.ledger import Ledger

    if not config.ledger.enabled:
        return None, None
    stores = {name: MlflowLedger(mlflow_adapter(reg), config.ledger.experiment)
              for name, reg in registries.items()}
    return Ledger(stores, socket.gethostname()), DeliveryWatch(stores, metrics)


def intervals(ledger: Ledger | None) -> Callable[[str], Sequence[Interval]] | None:
    """model → its applied intervals, for the page's timeline (None: no ledger)."""
    if ledger is None:
        return None
    from mlflow_gitops.loop.ledger import applied_intervals

    return lambda model: applied_intervals(ledger.stores, model)


def reverts(args: argparse.Namespace, source: GitSource, cache: Path,
            registries: Mapping[str, RegistryPort], hide: Callable[[str], None],
            config: ControllerConfig) -> RevertPullRequests | None:
    """Revert pull requests after automatic rollbacks, on the `forge:` (the flags override
    it), when a forge token is configured; without one, rollbacks happen without a pull
    request."""
    from mlflow_gitops.adapters.config import ForgeConfig
    from mlflow_gitops.adapters.forge_target import resolve
    from mlflow_gitops.app.propose import ControllerProposer, Forge
    from mlflow_gitops.app.revert import RevertPullRequests
    from mlflow_gitops.cli.policies import local_policy

    if not config.verification_sources:
        return None
    settings = config.forge_settings or ForgeConfig()
    token_file = args.forge_token_file or settings.token_file or args.git_token_file
    if token_file is None:
        return None
    target = resolve(settings, source.url, token_file=token_file, api_url=args.forge_api_url)
    hide(target.token)
    clone = ControllerProposer(source.url, source.branch, source.path, cache / "reverts",
                               source.auth, registries, local_policy(), None)
    return RevertPullRequests(clone, Forge(target.remote_url, target.token, target.api_url))


def verifier(config: ControllerConfig, redact: Callable[[str], None],
             reverts: RevertPullRequests | None = None, ledger: Ledger | None = None
             ) -> Verifier | None:
    """The verification step when the config names sources (their tokens never logged); its
    outcomes and automatic rollbacks go into `ledger`."""
    if not config.verification_sources:
        return None
    from mlflow_gitops.adapters.verification import Sources
    from mlflow_gitops.loop.verification import Verifier

    for source in config.verification_sources.values():
        if source.token_file:
            with contextlib.suppress(OSError, UnicodeError):  # Sources says why, below
                redact(read_secret(source.token_file))
    return Verifier(Sources(config.verification_sources), on_rollback=reverts, ledger=ledger)


def proposer(args: argparse.Namespace, source: GitSource, cache: Path,
              registries: Mapping[str, RegistryPort], hide: Callable[[str], None],
              config: ControllerConfig) -> ControllerProposer:
    """The controller's proposal rounds: a clone of its own, the git source's credentials,
    and the `forge:` section (the flags override it; checked now, not at the first round)."""
    from mlflow_gitops.adapters.config import ForgeConfig
    from mlflow_gitops.adapters.forge_target import resolve
    from mlflow_gitops.app.propose import ControllerProposer, Forge
    from mlflow_gitops.cli.policies import local_policy

    settings = config.forge_settings or ForgeConfig()
    token_file = args.forge_token_file or settings.token_file or args.git_token_file
    if token_file is None:
        usage_error(args.prog, "--propose needs a forge token: forge.token_file in --config, "
                    "--forge-token-file FILE or --git-token-file")
    target = resolve(settings, source.url, token_file=token_file, api_url=args.forge_api_url)
    hide(target.token)
    return ControllerProposer(source.url, source.branch, source.path, cache / "proposals",
                              source.auth, registries, local_policy(),
                              Forge(target.remote_url, target.token, target.api_url))


def elector(args: argparse.Namespace, trigger: Trigger) -> LeaderElector:
    from mlflow_gitops.adapters.kube import KubeLeaseStore, api_client
    from mlflow_gitops.loop.leader import ElectionConfig, LeaderElector

    api = api_client(host=args.kube_api_server, kubeconfig=args.kubeconfig)
    store = KubeLeaseStore(api, args.lease_namespace, args.lease_name)
    config = ElectionConfig(identity=args.identity, lease_duration=args.lease_duration,
                            renew_deadline=args.renew_deadline, retry_period=args.retry_period,
                            url=args.advertise_url or "")
    fields = {"identity": args.identity, "lease": f"{args.lease_namespace}/{args.lease_name}"}

    def started() -> None:
        log.info("became leader", extra={"fields": fields})
        trigger.request("became leader")  # reconcile now, not at the next check

    def stopped() -> None:
        if trigger.stopped:  # shutting down: we release it on purpose
            log.info("stopped leading: shutting down", extra={"fields": fields})
        else:
            log.warning("lost the lease: standing by", extra={"fields": fields})

    return LeaderElector(store, config, on_started_leading=started, on_stopped_leading=stopped)


def events(args: argparse.Namespace) -> EventSink:
    from mlflow_gitops.adapters.kube import EventRecorder, ObjectRef, api_client

    namespace = os.environ.get("POD_NAMESPACE", args.lease_namespace)
    recorder = EventRecorder(api_client(host=args.kube_api_server, kubeconfig=args.kubeconfig),
                             namespace, instance=args.identity)
    pod = ObjectRef(kind="Pod", name=os.environ.get("POD_NAME", args.identity),
                    namespace=namespace, uid=os.environ.get("POD_UID") or None)

    def emit(reason: str, message: str, warning: bool) -> None:
        recorder.emit_event(pod, reason, message, "Warning" if warning else "Normal")

    return emit

