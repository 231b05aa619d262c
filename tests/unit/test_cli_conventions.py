"""CLI conventions every command shares: usage errors exit 1 with one line and a
pointer to --help, help text for every argument, an Examples: epilog, shell completion."""

from __future__ import annotations

import argparse
import shutil
import subprocess

import pytest
from mlflow_gitops.cli import build_parser, main
from mlflow_gitops.cli.common import path_of, version_of
from mlflow_gitops.cli.completion import bash_script


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no subcommands")


@pytest.mark.parametrize("name", sorted(_commands()))
def test_every_command_help_ends_with_examples(name: str) -> None:
    """Each command's --help shows an Examples: block of mlflow-gitops command lines."""
    text = _commands()[name].format_help()
    assert "\nExamples:\n  " in text and "mlflow-gitops " in text.split("Examples:")[1], \
        f"{name}: pass examples=[...] to sub.add_parser (see cli/common.py)"


@pytest.mark.parametrize("name", sorted(_commands()))
def test_every_argument_has_help_text(name: str) -> None:
    """Each visible option and positional of each command says what it is for."""
    for action in _commands()[name]._actions:
        if action.help == argparse.SUPPRESS:
            continue
        assert action.help, f"{name}: {action.option_strings or action.dest} has no help="


@pytest.mark.parametrize("argv", [
    ["plan", "--detailed-exitcode", "--outptu", "json"],
    ["plan", "--output", "yaml"],
    ["run", "--log-level", "verbose"],
    ["promote", "fraud-detector", "3"],
    ["promote", "fraud-detector", "three", "--env", "staging"],
    ["nosuchcommand"],
    [],
])
def test_usage_errors_exit_1_with_one_line_and_a_pointer_to_help(
        argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """A wrong invocation is exit 1 (never 2, which means changes pending), one line on
    stderr that names the command and points to its --help."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 1
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("mlflow-gitops") and "--help'" in err, err


def test_unknown_option_is_named_by_its_command(capsys: pytest.CaptureFixture[str]) -> None:
    """`plan --outptu json` says 'mlflow-gitops plan: error: unrecognized arguments'."""
    with pytest.raises(SystemExit):
        main(["plan", "--detailed-exitcode", "--outptu", "json"])
    assert capsys.readouterr().err.startswith(
        "mlflow-gitops plan: error: unrecognized arguments: --outptu")


def test_promote_takes_version_positionally_and_the_old_spellings() -> None:
    """`promote MODEL VERSION --env ENV` is the form; `--version N --to ENV` still parses."""
    parser = build_parser()
    new = parser.parse_args(["promote", "m", "3", "--env", "staging"])
    old = parser.parse_args(["promote", "m", "--version", "3", "--to", "staging", "--path", "e"])
    assert (version_of(new), new.env, new.path) == (3, "staging", None)
    assert (version_of(old), old.env, old.path_flag) == (3, "staging", "e")
    assert "--version" not in _commands()["promote"].format_usage()


def test_run_repo_url_keeps_repo_as_an_alias() -> None:
    """`run --repo-url URL` is the spelling; `--repo URL` still works."""
    parser = build_parser()
    assert parser.parse_args(["run", "--repo-url", "file:///x"]).repo == "file:///x"
    assert parser.parse_args(["run", "--repo", "file:///x"]).repo == "file:///x"


def test_promote_and_rollback_offer_json_output() -> None:
    """`-o json` is accepted by promote and rollback like the other commands."""
    parser = build_parser()
    assert parser.parse_args(["rollback", "m", "--env", "p", "-o", "json"]).output == "json"
    assert parser.parse_args(["promote", "m", "2", "--env", "p", "-o", "json"]).output == "json"


def _complete(words: list[str]) -> list[str]:
    script = bash_script(build_parser())
    line = " ".join(f"'{w}'" for w in words)
    program = (f"{script}\nCOMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; _mlflow_gitops; "
               'printf "%s\\n" "${COMPREPLY[@]}"')
    out = subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=True)
    return out.stdout.split()


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completion_completes_commands_options_and_choices() -> None:
    """The generated bash script completes a command, its options and an option's values."""
    assert _complete(["mlflow-gitops", "pl"]) == ["plan"]
    assert "--detailed-exitcode" in _complete(["mlflow-gitops", "plan", "--det"])
    assert _complete(["mlflow-gitops", "plan", "-o", ""]) == ["text", "json", "markdown"]
    assert _complete(["mlflow-gitops", "run", "--log-level", "W"]) == ["WARNING"]


def test_zsh_completion_wraps_the_bash_script(capsys: pytest.CaptureFixture[str]) -> None:
    """`completion zsh` prints a #compdef script that loads the same completion function."""
    assert main(["completion", "zsh"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("#compdef mlflow-gitops") and "complete -o filenames -F" in out


# --- the flag convention (README "Command line"), checked on every command's parser --------

#: Commands where the environment is where a version goes, so `--to ENV` reads right.
DESTINATION_COMMANDS = {"promote"}
#: Option spellings that name something the convention spells another way.
OLD_SPELLINGS = {"--to": "--env", "--to-version": "VERSION", "--version": "VERSION",
                 "-v": "VERSION", "--environment": "--env"}
#: A value for each positional, by its metavar, so a command line can be built for any
#: command without knowing it.
SAMPLE = {"MODEL": "m", "VERSION": "3", "BASE": "main", "HEAD": "feature", "SHELL": "bash"}


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {flag: a for a in parser._actions for flag in a.option_strings}


def _minimal_argv(name: str, parser: argparse.ArgumentParser) -> tuple[list[str], list[str]]:
    """The command with its positionals before PATH, and its required options, filled."""
    positionals = [name]
    for action in parser._actions:
        if not action.option_strings and action.dest != "path" and (
                action.nargs != "?" or action.dest == "version"):
            positionals.append(SAMPLE[str(action.metavar)])
    options = []
    for action in parser._actions:
        if action.option_strings and action.required:
            options += [action.option_strings[0], "x"]
    return positionals, options


@pytest.mark.parametrize("name", sorted(_commands()))
def test_every_command_follows_the_flag_convention(name: str) -> None:
    """PATH is positional (before or after the options) with `--path` as the same thing,
    VERSION is positional, an environment is `--env` (`--to` only for a destination), and
    an older spelling is never shown in --help: a new command cannot break this unnoticed."""
    parser = _commands()[name]
    options = _options(parser)
    visible = {f for f, a in options.items() if a.help != argparse.SUPPRESS}
    for flag, instead in OLD_SPELLINGS.items():
        assert flag not in visible, f"{name}: {flag} is shown; the convention is {instead}"
    if "--to" in options:
        assert name in DESTINATION_COMMANDS and options["--to"].dest == "env", \
            f"{name}: --to may only alias --env where ENV is a destination"
    for action in parser._actions:
        assert action.dest not in ("environment", "to"), f"{name}: spell it --env"
        if "version" in action.dest and action.dest != "version_flag" \
                and action.option_strings:
            raise AssertionError(f"{name}: the version is the positional VERSION")
        if not action.option_strings and action.dest not in ("help",):
            assert str(action.metavar).isupper(), f"{name}: positional {action.dest} metavar"
    positionals = {a.dest for a in parser._actions if not a.option_strings}
    if "version" in positionals:
        assert options["--version"].dest == "version_flag"
    if "path" not in positionals:
        assert "--path" not in options or name == "run", f"{name}: --path without PATH"
        return
    assert options["--path"].dest == "path_flag" and options["--path"].help == argparse.SUPPRESS
    positional, required = _minimal_argv(name, parser)
    root = build_parser()
    for argv in ([*positional, "somewhere", *required], [*positional, *required, "somewhere"],
                 [*positional, *required, "--path", "somewhere"],
                 [*positional, "--path", "somewhere", *required]):
        args = root.parse_args(argv)
        if "version" in args:
            assert version_of(args, required=False) == 3, argv
        assert path_of(args) == "somewhere", f"{name}: {argv} gave {args}"


def test_path_after_options_and_versions_in_any_spelling() -> None:
    """`promote m 3 --env staging environments` parses as the usage line shows, and
    `rollback m --env p environments` does not take the folder for a version."""
    parser = build_parser()
    args = parser.parse_args(["promote", "m", "3", "--env", "staging", "envs"])
    assert (version_of(args), path_of(args)) == (3, "envs")
    args = parser.parse_args(["rollback", "m", "--env", "p", "envs"])
    assert (version_of(args, required=False), path_of(args)) == (None, "envs")
    args = parser.parse_args(["rollback", "m", "--to-version", "2", "--env", "p"])
    assert version_of(args, required=False) == 2
    args = parser.parse_args(["reject", "m", "-v", "7", "--reason", "r"])
    assert version_of(args) == 7
    args = parser.parse_args(["reject", "m", "7", "--reason", "r"])
    assert version_of(args) == 7
