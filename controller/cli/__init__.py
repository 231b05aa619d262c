"""The `mlflow-gitops` command line (SPEC §5): arguments → the core → render → exit code.
Thin by design: every command is a few lines that call reconciler, render and adapters."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mlflow_gitops import __version__
from mlflow_gitops.cli import local, propose, review, run
from mlflow_gitops.cli.common import run_command

#: Each module registers its subcommands; handlers import what they need lazily, so
#: `validate` never pays for mlflow or git.
COMMANDS = (local, review, propose, run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlflow-gitops",
        description="GitOps for the MLflow Model Registry: which model version serves in which "
        "environment lives as YAML in git; this tool plans and applies the difference.",
        epilog="Registry: MLFLOW_TRACKING_URI (and MLflow's auth variables) unless --config "
        "names registries. Run 'mlflow-gitops COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"mlflow-gitops {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_command(args)


if __name__ == "__main__":
    sys.exit(main())
