"""`mlflow-gitops run`: the controller as a long-running process. Wires the git
source, the registries, the HTTP server, leader election and signals around the loop."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import logging
import math
import os
import shutil
import signal
import socket
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlflow_gitops.adapters.secrets import read_secret
from mlflow_gitops.cli import parts
from mlflow_gitops.cli.common import EXIT_OK, add_config, fatal, usage_error
from mlflow_gitops.loop.triggers import GIT_WEBHOOK

if TYPE_CHECKING:  # the composition root's parts, typed; imported late at run time
    from mlflow_gitops.loop.runner import Controller

log = logging.getLogger("mlflow_gitops.run")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "run", help="run the controller: poll git and webhooks, reconcile, serve metrics",
        description="Run the controller until SIGTERM: clone the repository once, then fetch "
        "on every trigger (a timer and POST /webhook), validate the branch tip and reconcile "
        "the registry. Serves /healthz, /readyz, /metrics, /status, /webhook and a read-only "
        "web page at / on --listen. "
        "Flags override the config file; secrets are only ever read from files. "
        "Needs the controller extra: pip install 'mlflow-gitops[controller]'.",
        usage="%(prog)s --repo-url URL [options]",
        examples=["mlflow-gitops run --repo-url https://github.com/acme/ml-environments.git",
                  "mlflow-gitops run --repo-url file:///srv/git/envs.git --interval 30 "
                  "--listen 127.0.0.1:8080",
                  "mlflow-gitops run --config /etc/mlflow-gitops/config.yaml --leader-elect "
                  "--log-format json"])
    add_config(p)
    src = p.add_argument_group("git source")
    src.add_argument("--repo-url", "--repo", dest="repo", metavar="URL",
                     help="repository URL (https://, ssh://, file://); required unless the "
                     "config file sets repo:")
    src.add_argument("--branch", help="branch to follow (default: main)")
    src.add_argument("--path", metavar="DIR",
                     help="folder of environment files in the repository (default: "
                     "environments)")
    src.add_argument("--interval", type=positive_seconds, metavar="SECONDS",
                     help="seconds between polls (default: 60)")
    src.add_argument("--cache-dir", default=os.environ.get("MLFLOW_GITOPS_CACHE_DIR"),
                     help="where the repository is cached, kept between runs (default: a private "
                     "temp folder, removed on exit)")
    src.add_argument("--git-token-file", metavar="FILE", help="HTTPS token, read from a file")
    src.add_argument("--git-ssh-key-file", metavar="FILE", help="SSH private key file")
    src.add_argument("--git-known-hosts-file", metavar="FILE", help="SSH known_hosts file")
    src.add_argument("--git-timeout", type=positive_seconds, default=60.0, metavar="SECONDS",
                     help="seconds a clone or fetch may take (default: 60)")
    srv = p.add_argument_group("serving")
    srv.add_argument("--listen", default="0.0.0.0:8080",
                     help="host:port for health, metrics, status and webhook (default: "
                     "0.0.0.0:8080)")
    srv.add_argument("--webhook-secret-file", metavar="FILE",
                     help="secret for GitHub X-Hub-Signature-256 / GitLab X-Gitlab-Token")
    srv.add_argument("--mlflow-webhook-secret-file", metavar="FILE",
                     help="secret of the MLflow registry webhook (X-MLflow-Signature) that "
                     "POST /webhook/mlflow verifies; see docs/feedback.md, \"MLflow webhooks\"")
    srv.add_argument("--sync-token-file", metavar="FILE",
                     help="bearer token that POST /sync (mlflow-gitops sync) must carry")
    srv.add_argument("--advertise-url", metavar="URL",
                     default=_advertise_default(),
                     help="this replica's own URL, written to the Lease while it leads, so a "
                     "standby forwards the webhooks it receives (default: "
                     "http://$POD_IP:8080 when POD_IP is set)")
    srv.add_argument("--mlflow-ui-url", metavar="URL",
                     help="the MLflow UI's base URL, for links from the web page at / "
                     "(no credentials; default: mlflow_ui_url in --config, else no links)")
    srv.add_argument("--log-format", choices=("text", "json"), default="text",
                     help="one JSON object per line, or readable text (default: text)")
    srv.add_argument("--log-level", default="INFO", type=str.upper,
                     choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                     help="DEBUG, INFO, WARNING or ERROR (default: INFO)")
    prop = p.add_argument_group("proposals")
    prop.add_argument("--propose", action="store_true",
                      help="after each pass, open or update a pull request for each new version "
                      "that qualifies for an environment with a propose: block (as "
                      "'mlflow-gitops propose --open-pr'); pushes with the git credentials")
    prop.add_argument("--forge-token-file", metavar="FILE",
                      help="GitHub/GitLab API token for --propose and revert pull requests after "
                      "an automatic rollback (default: forge.token_file in "
                      "--config, else --git-token-file)")
    prop.add_argument("--forge-api-url", metavar="URL",
                      help="forge API root for --propose, for GitHub Enterprise or self-hosted "
                      "GitLab (e.g. https://git.example.com/api/v4; default: forge.api_url "
                      "in --config)")
    kube = p.add_argument_group("kubernetes")
    kube.add_argument("--leader-elect", action="store_true",
                      help="campaign for a coordination.k8s.io/v1 Lease; only the leader writes")
    kube.add_argument("--lease-name", default="mlflow-gitops",
                      help="name of the Lease object (default: mlflow-gitops)")
    kube.add_argument("--lease-namespace", default=os.environ.get("POD_NAMESPACE", "default"),
                      help="namespace of the Lease (default: $POD_NAMESPACE or default)")
    kube.add_argument("--lease-duration", type=positive_int, default=15, metavar="SECONDS",
                      help="seconds a standby waits before taking over (default: 15)")
    kube.add_argument("--renew-deadline", type=positive_seconds, default=10.0,
                      metavar="SECONDS",
                      help="seconds the leader keeps trying to renew before it stops writing "
                      "(default: 10)")
    kube.add_argument("--retry-period", type=positive_seconds, default=2.0, metavar="SECONDS",
                      help="seconds between lease attempts (default: 2)")
    kube.add_argument("--identity", default=os.environ.get("POD_NAME") or socket.gethostname(),
                      help="this replica's name in the Lease (default: $POD_NAME or hostname)")
    kube.add_argument("--events", action="store_true",
                      help="record a Kubernetes Event on this Pod per applied or refused change")
    kube.add_argument("--kubeconfig", metavar="FILE",
                      help="kubeconfig outside a cluster (default: in-cluster)")
    kube.add_argument("--kube-api-server", metavar="URL",
                      help="talk to this API server URL directly (tests, proxies)")
    p.set_defaults(handler=cmd_run)


def _require_controller_extra() -> None:
    """`run` needs prometheus-client and kubernetes, which the slim install leaves out."""
    import importlib.util

    missing = [name for name in ("prometheus_client", "kubernetes")
               if importlib.util.find_spec(name) is None]
    if missing:
        fatal(f"'run' needs {' and '.join(missing)}, which the slim install leaves out: "
              "pip install 'mlflow-gitops[controller]'")


def _secret(flag: str, path: str | None) -> bytes | None:
    """The secret in the file a flag names; a file that cannot be read is one line, exit 1."""
    if not path:
        return None
    try:
        return read_secret(path).encode("utf-8")
    except OSError as exc:
        fatal(f"{flag} {path}: cannot read it: {exc.strerror or exc}")
    except UnicodeDecodeError:
        fatal(f"{flag} {path}: cannot read it: it is not UTF-8 text")


def positive_seconds(text: str) -> float:
    """A duration flag: a finite number of seconds above zero (`0` would busy-loop or be
    silently replaced by a default; `-5` and `nan` make no sense)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be a number of seconds above 0")
    return value


def positive_int(text: str) -> int:
    """A whole number of seconds above zero."""
    try:
        value = int(text.strip(), 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of seconds") \
            from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be a whole number of seconds above 0")
    return value


def cmd_run(args: argparse.Namespace) -> int:
    _require_controller_extra()
    from mlflow_gitops.adapters import logs
    from mlflow_gitops.adapters.config import load_config
    from mlflow_gitops.adapters.feedback import build as build_feedback
    from mlflow_gitops.adapters.git.source import GitSource
    from mlflow_gitops.adapters.http import HttpServer
    from mlflow_gitops.adapters.inbound import Inbound
    from mlflow_gitops.adapters.metrics import Metrics
    from mlflow_gitops.adapters.page import Page, safe_ui_url
    from mlflow_gitops.adapters.uris import credentials_in
    from mlflow_gitops.cli.registries import build_registries
    from mlflow_gitops.cli.trust import controller_policy, controller_trust
    from mlflow_gitops.loop.runner import Controller
    from mlflow_gitops.loop.triggers import Trigger

    redactor = logs.configure(args.log_format, args.log_level)
    config = load_config(args.config)
    for notice in config.notices:
        log.warning("%s", notice)
    repo = args.repo or config.repo
    if not repo:
        usage_error(args.prog, "no repository: pass --repo-url URL or set repo: in --config")
    ui_url = safe_ui_url(args.mlflow_ui_url or config.mlflow_ui_url)  # refused early, not late
    if args.cache_dir:
        cache = Path(args.cache_dir)
    else:  # a private clone for this process only: removed however the process exits
        cache = Path(tempfile.mkdtemp(prefix="mlflow-gitops-"))
        atexit.register(shutil.rmtree, cache, True)
    secret = _secret("--webhook-secret-file", args.webhook_secret_file)
    if secret:
        redactor.add(secret)
    source = GitSource(repo, args.branch or config.branch, args.path or config.path,
                       cache / "repo", token_file=args.git_token_file,
                       ssh_key_file=args.git_ssh_key_file,
                       known_hosts_file=args.git_known_hosts_file, timeout=args.git_timeout)
    for value in source.secrets():
        redactor.add(value)
    names = tuple(sorted(config.registries)) or ("default",)
    registries = build_registries(args.config, names, one_shot=False)
    for rc in config.registries.values():
        if rc.token_file:
            with contextlib.suppress(OSError, UnicodeError):  # the registry says so later
                redactor.add(read_secret(rc.token_file))
    for rc in config.registries.values():  # http://alice:PW@host: PW is masked in every line
        for value in credentials_in(rc.tracking_uri):
            redactor.add(value)
    for variable in ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_PASSWORD"):
        redactor.add(os.environ.get(variable, ""))
    budget = _write_budget(args)
    metrics = Metrics()
    feedback = build_feedback(config, repo, redactor.add)
    proposer = parts.proposer(args, source, cache, registries, redactor.add, config) \
        if args.propose else None
    ledger, delivery = parts.ledger(config, registries, metrics)
    verifier = parts.verifier(config, redactor.add, parts.reverts(
        args, source, cache, registries, redactor.add, config), ledger)
    trust = controller_trust(config, source, cache, repo, redactor.add)
    trigger = Trigger()
    elector = parts.elector(args, trigger) if args.leader_elect else None
    controller = Controller(
        source, registries, metrics, ledger=ledger, delivery=delivery,
        interval=args.interval if args.interval is not None else config.interval,
        policy=controller_policy(trust), trust=trust,
        known_registries=list(names), known_sources=config.source_kinds(), verifier=verifier,
        on_event=parts.events(args) if args.events else None, feedback=feedback, proposer=proposer,
        write_budget=budget, elector=elector, trigger=trigger)
    page = Page(controller.page_data, repo_url=repo, repo_label=source.display_url,
                branch=source.branch, mlflow_ui_url=ui_url,
                history=GitSource(repo, source.branch, source.path, cache / "repo",
                                  timeout=args.git_timeout),
                delivery=delivery, intervals=parts.intervals(ledger))
    mlflow_secret = _secret("--mlflow-webhook-secret-file", args.mlflow_webhook_secret_file)
    sync_token = _secret("--sync-token-file", args.sync_token_file) or None
    for secret_value in (mlflow_secret, sync_token):
        if secret_value:
            redactor.add(secret_value)
    inbound = Inbound(lambda route: controller.on_webhook(_REASONS[route]),
                      webhook_secret=secret, mlflow_secret=mlflow_secret,
                      sync_token=sync_token, leader_url=controller.forward_url)
    server = HttpServer(args.listen, ready=controller.ready, metrics=metrics.render,
                        status=controller.status, on_webhook=controller.on_webhook,
                        webhook_secret=secret, page=page, inbound=inbound)
    server.start()
    if elector is not None:
        elector.start()
    else:
        metrics.leader(True)

    def stop(signum: int, _frame: Any) -> None:
        log.info("%s received: finishing the pass in flight, then exiting",
                 signal.Signals(signum).name)
        controller.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("controller started", extra={"fields": {
        "repo": source.display_url, "branch": source.branch, "path": source.path,
        "interval": controller.interval, "registries": list(names),
        "leader_election": elector is not None, "identity": args.identity}})
    finished = False
    try:
        finished = _run_until_stopped(controller, budget)
    finally:
        if elector is not None:
            # A call still in flight keeps the lease until it expires: never two writers.
            elector.stop(release=finished, timeout=5)
        server.stop()
        if feedback is not None:
            feedback.stop(timeout=5)  # what is due goes out; retries still waiting do not
        source.close()
        log.info("stopped")
    return EXIT_OK


SHUTDOWN_SECONDS = 15.0  # SIGTERM to exit, whatever the registry or git does (grace: 60 s)


def _run_until_stopped(controller: Controller, budget: float) -> bool:
    """Run the loop in a worker thread until it returns; after SIGTERM wait at most
    SHUTDOWN_SECONDS (or one write's whole budget, if longer) for the pass in flight. No
    write starts once stopping, so what may still run then is a read, which is abandoned.
    True when the loop finished."""
    import threading

    worker = threading.Thread(target=controller.loop, name="reconcile-loop", daemon=True)
    worker.start()
    while worker.is_alive() and not controller.trigger.stopped:
        worker.join(0.5)  # short joins: the signal handler runs on this (the main) thread
    worker.join(max(SHUTDOWN_SECONDS, budget + 2))
    if worker.is_alive():
        log.warning("exiting with a registry or git read still in flight after %.0fs",
                    max(SHUTDOWN_SECONDS, budget + 2))
        return False
    return True


def _write_budget(args: argparse.Namespace) -> float:
    """One registry call's whole timeout; with leader election it must fit in the lease."""
    from mlflow_gitops.adapters.mlflow.registry import fit_http_to, write_budget
    from mlflow_gitops.core.errors import ConfigError
    from mlflow_gitops.loop.leader import JITTER
    from mlflow_gitops.loop.runner import LEASE_MARGIN

    try:
        budget = write_budget()
    except ConfigError as exc:
        fatal(str(exc))
    if args.leader_elect:
        room = args.lease_duration - JITTER * args.retry_period - LEASE_MARGIN
        if budget >= room:
            fitted = fit_http_to(room)
            if fitted is None:
                fatal(f"a registry call may take up to {budget:g}s (MLFLOW_HTTP_REQUEST_TIMEOUT"
                      " x attempts + backoff), but the lease leaves only "
                      f"{max(room, 0):g}s between renewals: raise --lease-duration (now "
                      f"{args.lease_duration}) or lower MLFLOW_HTTP_REQUEST_TIMEOUT")
            log.warning("a registry call could take %gs, longer than the lease allows (%gs): "
                        "using MLFLOW_HTTP_REQUEST_TIMEOUT=%s with no retries (%gs)", budget,
                        room, os.environ.get("MLFLOW_HTTP_REQUEST_TIMEOUT"), fitted)
            budget = fitted
    return budget


_REASONS = {"/webhook": GIT_WEBHOOK, "/webhook/mlflow": "mlflow webhook", "/sync": "sync"}


def _advertise_default() -> str | None:
    """http://$POD_IP:8080 in a Pod (the Deployment sets POD_IP from status.podIP)."""
    ip = os.environ.get("POD_IP", "").strip()
    if not ip:
        return None
    return f"http://[{ip}]:8080" if ":" in ip else f"http://{ip}:8080"
