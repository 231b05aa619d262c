"""What every command shares: the parser conventions (usage errors exit 1 with one line and
a pointer to --help, an `Examples:` epilog), loading the desired state with all its
diagnostics, building registry adapters from config, one-line fatal errors, and output
format flags.

A new command gets the conventions by registering on the `sub` it is given:
`sub.add_parser(name, help=..., description=..., examples=["mlflow-gitops NAME ..."])`
(the subparsers build `Parser`s); give every argument a `help=`. tests/unit/test_cli_conventions.py
checks both for every command."""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from mlflow_gitops.core.diagnostics import Diagnostic
from mlflow_gitops.core.errors import ConfigError, GitOpsError
from mlflow_gitops.core.model import DesiredState
from mlflow_gitops.core.plan import Plan

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2


class HelpFormatter(argparse.HelpFormatter):
    """Wraps prose paragraphs; keeps indented blocks (the examples) exactly as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        out = []
        for para in text.split("\n\n"):
            if "\n  " in para or para.startswith("  "):
                out.append("\n".join(indent + line for line in para.splitlines()))
            else:
                out.append(super()._fill_text(para, width, indent))
        return "\n\n".join(out)


class Parser(argparse.ArgumentParser):
    """The CLI's parser: a usage error is one line on stderr with a pointer to --help and exit
    1, so exit 2 always means "changes pending"; `examples=[...]` becomes the
    `Examples:` epilog. Subparsers are built with the same class."""

    def __init__(self, *args: Any, examples: Sequence[str] = (), **kwargs: Any) -> None:
        if examples:
            block = "Examples:\n" + "\n".join(f"  {e}" for e in examples)
            kwargs["epilog"] = (kwargs["epilog"] + "\n\n" + block) if kwargs.get("epilog") \
                else block
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)
        self.set_defaults(prog=self.prog)

    def error(self, message: str) -> NoReturn:
        usage_error(self.prog, message)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        """A command's positionals may come before, between or after its options
        (`promote m 3 --env staging environments`), as the usage line shows; the top-level
        parser, which holds the subcommands, parses the usual way."""
        if self._subparsers is not None or getattr(self, "_intermixing", False):
            return super().parse_known_args(args, namespace)
        renamed: dict[str, str] = getattr(self, "renamed", {})
        if renamed and args is not None:  # `--to ENV` is `--env ENV`, required or not
            args = [_rename(a, renamed) for a in args]
        self._intermixing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False


def _rename(arg: str, renamed: Mapping[str, str]) -> str:
    flag, eq, value = arg.partition("=")
    return renamed[flag] + eq + value if flag in renamed else arg


def usage_error(prog: str, message: str) -> NoReturn:
    """A wrong invocation: one line on stderr, a pointer to --help, exit 1."""
    line = " ".join(message.split())
    print(f"{prog}: error: {line} (see '{prog} --help')", file=sys.stderr)
    sys.exit(EXIT_ERROR)


def hidden_alias(parser: argparse.ArgumentParser, *flags: str, dest: str, **kwargs: Any
                 ) -> None:
    """An old spelling that still works but is not shown in --help."""
    parser.add_argument(*flags, dest=dest, help=argparse.SUPPRESS, default=argparse.SUPPRESS,
                        **kwargs)


class Fatal(Exception):
    """Stop the command: print `message` as one line on stderr and exit `code`."""

    def __init__(self, message: str, code: int = EXIT_ERROR):
        super().__init__(message)
        self.code = code


def fatal(message: str, code: int = EXIT_ERROR) -> NoReturn:
    raise Fatal(message, code)


def run_command(args: argparse.Namespace) -> int:
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except Fatal as exc:
        if str(exc):
            _error(str(exc))
        return exc.code
    except GitOpsError as exc:
        _error(str(exc))
        return EXIT_ERROR
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence: never a traceback
        if os.environ.get("MLFLOW_GITOPS_DEBUG"):
            traceback.print_exc()
        _error(f"internal error: {type(exc).__name__}: {exc} "
               "(set MLFLOW_GITOPS_DEBUG=1 for the traceback and report it)")
        return EXIT_ERROR


def _error(message: str) -> None:
    from mlflow_gitops.adapters.uris import scrub  # a URI's password never reaches stderr

    print(f"mlflow-gitops: error: {scrub(message)}", file=sys.stderr)


def add_path(parser: argparse.ArgumentParser,
             help: str = "folder of environment files (default: ./environments)") -> None:
    """The optional PATH positional every command on environment files takes (default
    ./environments), before or after the options; `--path DIR` is the same thing (not shown
    in --help). Read it back with `path_of(args)`."""
    parser.add_argument("path", nargs="?", default=None, metavar="PATH", help=help)
    parser.set_defaults(path_flag=None)
    hidden_alias(parser, "--path", dest="path_flag", metavar="DIR")


def add_env(parser: argparse.ArgumentParser, required: bool = True,
            help: str = "environment name: the file's stem, e.g. production",
            destination: bool = False) -> None:
    """`--env ENV` everywhere; where the environment is where a version goes (`promote`),
    `--to ENV` is the same option (not shown in --help)."""
    parser.add_argument("--env", dest="env", metavar="ENV", required=required, help=help)
    if destination:  # read as --env before parsing (see Parser), so "required" holds
        hidden_alias(parser, "--to", dest="env", metavar="ENV")
        parser.renamed = {"--to": "--env"}  # type: ignore[attr-defined]


def add_version(parser: argparse.ArgumentParser, help: str,
                aliases: Sequence[str] = ("--version", "-v")) -> None:
    """The model version, always the positional VERSION right after MODEL; the older flag
    spellings (`--version N`, `-v N`, `--to-version N`) still work, not shown in --help.
    Read it back with `version_of(args)`."""
    parser.add_argument("version", nargs="?", default=None, metavar="VERSION", help=help)
    parser.set_defaults(version_flag=None)
    hidden_alias(parser, *aliases, dest="version_flag", metavar="N")


def version_of(args: argparse.Namespace, required: bool = True) -> int | None:
    """VERSION or its flag spelling, not two different ones. A PATH given where VERSION
    may stand (`rollback m environments --env p`) is taken as PATH when PATH is free."""
    positional = args.version
    if positional is not None and not positional.isdigit() and "path" in args \
            and args.path is None and (args.version_flag is not None or not required):
        args.path, positional = positional, None
    values = {_model_version(args.prog, v) for v in (positional, args.version_flag)
              if v is not None}
    if len(values) > 1:
        usage_error(args.prog, f"VERSION given twice ({positional} and {args.version_flag}); "
                    "pass it once")
    if not values:
        if required:
            usage_error(args.prog, "the following arguments are required: VERSION")
        return None
    return values.pop()


def _model_version(prog: str, text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        usage_error(prog, f"argument VERSION: '{text}' is not a model version (a whole "
                    "number from 1)")
    return int(text)


def path_of(args: argparse.Namespace) -> str:
    """PATH or `--path`, not both; ./environments when neither is given."""
    flag = args.path_flag
    if flag is not None and args.path is not None and flag != args.path:
        usage_error(args.prog, f"PATH given twice ({args.path} and --path {flag}); pass one")
    return str(args.path or flag or "environments")


def add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", default=os.environ.get("MLFLOW_GITOPS_CONFIG"),
                        help="controller config naming registries (default: one registry, "
                        "MLFLOW_TRACKING_URI; env MLFLOW_GITOPS_CONFIG)")


def add_output(parser: argparse.ArgumentParser, choices: tuple[str, ...] = ("text", "json")
               ) -> None:
    parser.add_argument("--output", "-o", choices=choices, default="text",
                        help="output format (default: text)")


def read_folder(path: Path) -> dict[str, str]:
    if not path.exists():
        fatal(f"{path}: no such folder; pass the folder of environment files "
              "(default ./environments)")
    if not path.is_dir():
        fatal(f"{path}: not a folder; pass the folder that holds the environment files")
    from mlflow_gitops.desired.loader import is_environment_file

    files = {}
    for p in sorted(path.iterdir()):
        if p.is_file() and is_environment_file(p.name):
            # Undecodable bytes become U+FFFD so the validator names the file and line.
            files[str(p)] = p.read_bytes().decode("utf-8", errors="replace")
    if not files:
        fatal(f"{path}: no *.yaml or *.yml environment files found")
    return files


def load_desired(path: Path, commit: str = "local",
                 known_registries: list[str] | None = None,
                 known_sources: dict[str, str] | None = None) -> DesiredState:
    """Load and validate, or print every diagnostic and exit 1."""
    from mlflow_gitops.desired.loader import load_texts

    state, diagnostics = load_texts(read_folder(path), commit=commit,
                                    known_registries=known_registries,
                                    known_sources=known_sources)
    if state is None:
        report_invalid(diagnostics)
    assert state is not None
    return state


def report_invalid(diagnostics: list[Diagnostic]) -> NoReturn:
    for d in diagnostics:
        print(str(d), file=sys.stderr)
    fatal(f"{len(diagnostics)} problem(s) found; nothing was planned or applied")


def folder_commit(path: Path) -> str:
    """The lineage tag value: HEAD's SHA, marked `-dirty` when the folder has uncommitted
    edits (HEAD alone would claim assignments that no commit contains), else `local`."""
    from mlflow_gitops.adapters.git.local import head_commit, is_dirty

    sha = head_commit(path)
    if sha is None:
        return "local"
    return f"{sha}-dirty" if is_dirty(path) else sha


def stageless_registries(config_path: str | None) -> list[str]:
    """Configured registries without stages (Unity Catalog), told by their tracking URI."""
    from mlflow_gitops.adapters.config import load_config
    from mlflow_gitops.adapters.mlflow.stores import has_stages

    try:
        registries = load_config(config_path).registries
    except ConfigError as exc:
        fatal(str(exc))
    return sorted(name for name, rc in registries.items() if not has_stages(rc.tracking_uri))


def check_stages(desired: DesiredState, config_path: str | None) -> None:
    """A stage environment on a registry without stages: every such file:line, exit 1."""
    from mlflow_gitops.desired.stageless import stage_problems

    problems = stage_problems(desired, stageless_registries(config_path))
    if problems:
        report_invalid(problems)


def known_registries(config_path: str | None) -> list[str] | None:
    """Registry names the desired state may use; None (unchecked) without a config file."""
    if not config_path:
        return None
    from mlflow_gitops.adapters.config import load_config

    try:
        return sorted(load_config(config_path).registries)
    except ConfigError as exc:
        fatal(str(exc))


def known_sources(config_path: str | None) -> dict[str, str] | None:
    """Verification source name → kind that `verify:` checks may name; None (unchecked)
    without a config file."""
    if not config_path:
        return None
    from mlflow_gitops.adapters.config import load_config

    try:
        return load_config(config_path).source_kinds()
    except ConfigError as exc:
        fatal(str(exc))


def print_json(data: Mapping[str, Any] | list[Any]) -> None:
    print(json.dumps(data, indent=2, sort_keys=True, default=str))


def require_valid(loaded: tuple[DesiredState | None, list[Diagnostic]], what: str
                  ) -> DesiredState:
    """The loaded state, or every diagnostic on stderr and a fatal one-line summary."""
    state, diagnostics = loaded
    if state is None:
        for d in diagnostics:
            print(str(d), file=sys.stderr)
        fatal(f"{what}: {len(diagnostics)} problem(s); fix them first")
    return state


def print_errors(plan: Plan) -> None:
    """Per-model errors (with their gates) on stderr, before the summary on stdout."""
    from mlflow_gitops.planning.render import render_errors

    if plan.errors:
        print(render_errors(plan), end="", file=sys.stderr, flush=True)
    sys.stdout.flush()


def print_table(rows: Sequence[tuple[str, ...]]) -> None:
    """Left-aligned columns, two spaces apart, the way kubectl prints them."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
