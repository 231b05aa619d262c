"""The `mlflow-gitops` command line: arguments → the core → render → exit code.
Thin by design: every command is a few lines that call reconciler, render and adapters."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mlflow_gitops import __version__
from mlflow_gitops.cli import (
    audit,
    completion,
    controls,
    ledger,
    local,
    proposals,
    propose,
    review,
    run,
    sync,
)
from mlflow_gitops.cli.common import Parser, run_command, usage_error

#: Each module registers its subcommands; handlers import what they need lazily, so
#: `validate` never pays for mlflow or git.
COMMANDS = (local, review, propose, proposals, run, sync, controls, ledger, audit,
            completion)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="mlflow-gitops",
        description="GitOps for the MLflow Model Registry: which model version serves in which "
        "environment lives as YAML in git; this tool plans and applies the difference.",
        epilog="Registry: MLFLOW_TRACKING_URI (and MLflow's auth variables) unless --config "
        "names registries. Run 'mlflow-gitops COMMAND --help' for a command's options. "
        "Exit codes: 0 ok, 1 error (including usage errors), 2 changes pending (plan/diff "
        "--detailed-exitcode).",
        examples=["mlflow-gitops validate", "mlflow-gitops plan --detailed-exitcode",
                  "mlflow-gitops apply", "mlflow-gitops status --model fraud-detector",
                  "mlflow-gitops promote fraud-detector 3 --env staging --open-pr"],
    )
    parser.add_argument("--version", action="version", version=f"mlflow-gitops {__version__}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.register(sub)
    parser.set_defaults(root_parser=parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # named by the command they were given to, not the top level
        usage_error(args.prog, f"unrecognized arguments: {' '.join(extra)}")
    return run_command(args)


if __name__ == "__main__":
    sys.exit(main())
