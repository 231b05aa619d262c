"""`mlflow-gitops sync --controller URL`: ask a running controller for a pass now, as
`flux reconcile` and `argocd app sync` do, authenticated with a bearer token from a file (the
controller's `--sync-token-file`) rather than a forged forge signature. Any replica may be
asked: a standby forwards the request to the leader."""

from __future__ import annotations

import argparse
import os
from typing import Any

from mlflow_gitops.adapters.secrets import secret_file
from mlflow_gitops.cli.common import EXIT_OK, fatal

TOKEN_VARIABLE = "MLFLOW_GITOPS_SYNC_TOKEN"


def register(sub: Any) -> None:
    p = sub.add_parser(
        "sync", help="ask a running controller to reconcile now",
        description="Send POST /sync to a running controller (`run --sync-token-file`): it "
        "fetches git and reconciles at once instead of at its next interval. The token is "
        "read from --token-file or $MLFLOW_GITOPS_SYNC_TOKEN, never from a flag.",
        examples=["mlflow-gitops sync --controller http://127.0.0.1:8080 "
                  "--token-file ~/.config/mlflow-gitops/sync-token",
                  "kubectl -n mlflow-gitops port-forward svc/mlflow-gitops 8080 & "
                  "mlflow-gitops sync --controller http://127.0.0.1:8080 --token-file t"])
    p.add_argument("--controller", metavar="URL", required=True,
                   help="the controller's base URL, e.g. http://mlflow-gitops.mlflow-gitops:8080")
    p.add_argument("--token-file", metavar="FILE",
                   help="file holding the controller's sync token (default: "
                   f"${TOKEN_VARIABLE})")
    p.add_argument("--timeout", type=float, default=10.0,
                   help="seconds to wait for the controller's answer (default: 10)")
    p.set_defaults(handler=cmd_sync)


def cmd_sync(args: argparse.Namespace) -> int:
    from mlflow_gitops.adapters.inbound import request_sync

    if args.token_file:
        token = secret_file(args.token_file, "--token-file", required=False)
    else:
        token = os.environ.get(TOKEN_VARIABLE, "").strip()
    if not token:
        fatal(f"no sync token: pass --token-file FILE or set {TOKEN_VARIABLE}")
    if not args.controller.startswith(("http://", "https://")):
        fatal(f"--controller {args.controller!r}: expected http://HOST:PORT or https://…")
    try:
        code, text = request_sync(args.controller, token, args.timeout)
    except (OSError, ValueError) as exc:
        fatal(f"cannot reach the controller at {args.controller} ({type(exc).__name__}); "
              "check the URL and that the controller runs")
    if code == 202:
        print(f"reconcile requested at {args.controller}")
        return EXIT_OK
    if code == 401:
        fatal(f"the controller refused the token ({text}); use the file its "
              "--sync-token-file names")
    fatal(f"the controller answered {code}: {text or 'no reason given'}")
