"""`mlflow-gitops validate` on bad input: exit 1, every problem as `file:line: message`, and
never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import run_cli

HEADER = "apiVersion: mlflow-gitops/v1\nkind: Environment\n"


def write(folder: Path, name: str, text: str) -> str:
    (folder / name).write_text(text)
    return str(folder / name)


CASES = {
    "yaml syntax error": (
        HEADER + "target:\n  stage: Production\nmodels:\n  fraud: [3\n",
        6, "invalid YAML"),
    "unknown key": (
        HEADER + "target:\n  stage: Production\nsync:\n  self_heel: true\n",
        6, "unknown key 'sync.self_heel': did you mean 'self_heal'?"),
    "version zero": (
        HEADER + "target:\n  stage: Production\nmodels:\n  fraud: 0\n",
        6, "fraud: version must be a positive whole number (e.g. 3), got 0"),
    "unknown stage": (
        HEADER + "target:\n  stage: Prod\n",
        4, "unknown stage 'Prod': use Staging or Production"),
    "reserved alias latest": (
        HEADER + "target:\n  alias: latest\n",
        4, "alias 'latest' is reserved by MLflow"),
    "reserved alias v3": (
        HEADER + "target:\n  alias: v3\n",
        4, "alias 'v3' is reserved by MLflow"),
    "duplicate model key": (
        HEADER + "target:\n  stage: Production\nmodels:\n  fraud: 1\n  fraud: 2\n",
        7, "duplicate key 'fraud' (first at line 6)"),
    "name does not match file": (
        HEADER + "name: prod\ntarget:\n  stage: Production\n",
        3, "name 'prod' does not match the file name 'production'"),
    "missing target": (HEADER + "models: {}\n", 1, "missing required key 'target'"),
    # Hostile values: whatever the YAML reader raises is a file:line diagnostic.
    "impossible date": (
        HEADER + "target:\n  stage: Production\nmodels:\n  fraud: !!timestamp 2024-02-30\n",
        6, "invalid value: day is out of range for month"),
    "int tag on text": (
        HEADER + "target:\n  stage: Production\nmodels:\n  fraud: !!int abc\n",
        6, "invalid value: 'abc' is not a whole number"),
    "5,000-digit number": (
        HEADER + "target:\n  stage: Production\nmodels:\n  fraud: " + "9" * 5000 + "\n",
        6, "5000 digits is too long"),
    "1,000-deep nesting": (
        HEADER + "target:\n  stage: Production\nx: " + "[" * 1000 + "]" * 1000 + "\n",
        5, "nesting depth"),
    "octal-looking version": (
        HEADER + "target:\n  stage: Production\nmodels:\n  fraud: 010\n",
        6, "fraud: version must be plain decimal digits (e.g. 12), got '010'"),
    "base-60 version": (
        HEADER + "target:\n  stage: Production\nmodels:\n  fraud: 1:00\n",
        6, "got '1:00'"),
    "merge key": (
        HEADER + "target:\n  stage: Production\nmodels:\n  fraud: 3\n  <<: {m: 5}\n",
        7, "YAML merge keys (<<) are not supported"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_single_file_problem_is_reported_with_file_and_line(tmp_path: Path, case: str) -> None:
    """Each kind of bad input exits 1 with `file:line:` and a message that says the fix."""
    text, line, message = CASES[case]
    path = write(tmp_path, "production.yaml", text)
    result = run_cli("validate", str(tmp_path))
    assert result.code == 1
    assert f"{path}:{line}: " in result.err
    assert message in result.err
    assert "Traceback" not in result.err + result.out


def test_one_version_in_two_stages_is_refused(tmp_path: Path) -> None:
    """A version assigned to both Staging and Production names both places."""
    write(tmp_path, "production.yaml", HEADER + "target:\n  stage: Production\nmodels:\n  m: 4\n")
    staging = write(tmp_path, "staging.yaml",
                    HEADER + "target:\n  stage: Staging\nmodels:\n  m: 4\n")
    result = run_cli("validate", str(tmp_path))
    assert result.code == 1
    assert f"{staging}:6: m v4 is also assigned to stage Production in " in result.err
    assert "production.yaml:6" in result.err


def test_two_environments_with_the_same_target_are_refused(tmp_path: Path) -> None:
    """Two files targeting the same stage on one registry are an error on the second."""
    write(tmp_path, "blue.yaml", HEADER + "target:\n  stage: Production\n")
    green = write(tmp_path, "green.yaml", HEADER + "target:\n  stage: production\n")
    result = run_cli("validate", str(tmp_path))
    assert result.code == 1
    assert f"{green}:3: environment 'green' has the same target (stage Production)" in result.err


def test_promotion_from_unknown_environment_and_cycles(tmp_path: Path) -> None:
    """promotion.from must name an existing environment and must not form a cycle."""
    write(tmp_path, "a.yaml", HEADER + "target:\n  stage: Production\npromotion:\n  from: b\n")
    write(tmp_path, "b.yaml", HEADER + "target:\n  stage: Staging\npromotion:\n  from: a\n")
    typo = write(tmp_path, "c.yaml",
                 HEADER + "target:\n  alias: champion\npromotion:\n  from: stagin\n")
    result = run_cli("validate", str(tmp_path))
    assert result.code == 1
    assert "promotion.from forms a cycle (a → b → a)" in result.err
    assert (f"{typo}:5: promotion.from names environment 'stagin', which does not exist"
            in result.err)


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    """Validation collects every diagnostic across files instead of stopping at the first."""
    write(tmp_path, "one.yaml", HEADER + "target:\n  stage: Staging\nmodels:\n  m: 0\n  n: -2\n")
    write(tmp_path, "two.yaml", HEADER + "target:\n  alias: latest\n")
    result = run_cli("validate", str(tmp_path), "--output", "json")
    assert result.code == 1
    import json

    report = json.loads(result.out)
    assert report["valid"] is False
    assert [(Path(d["file"]).name, d["line"]) for d in report["diagnostics"]] == [
        ("one.yaml", 6), ("one.yaml", 7), ("two.yaml", 4)]


def test_the_shipped_examples_are_valid() -> None:
    """The example environments in the repository validate cleanly."""
    root = Path(__file__).resolve().parents[2]
    result = run_cli("validate", str(root / "environments"))
    assert result.code == 0, result.err
    assert "3 environment file(s) valid" in result.out


def test_missing_folder_is_one_clear_line(tmp_path: Path) -> None:
    """A wrong PATH is one line on stderr, exit 1."""
    result = run_cli("validate", str(tmp_path / "nope"))
    assert result.code == 1
    assert result.err.strip().count("\n") == 0 and "no such folder" in result.err


def test_environment_name_that_cannot_be_a_tag_key_is_invalid(tmp_path: Path) -> None:
    """`canary#1.yaml` fails validation at file:line, before any write would fail."""
    path = write(tmp_path, "canary#1.yaml", HEADER + "target:\n  alias: canary\n")
    result = run_cli("validate", str(tmp_path))
    assert result.code == 1
    assert f"{path}:1: environment name 'canary#1' cannot be part of an MLflow tag key" \
        in result.err
    assert "internal error" not in result.err and "Traceback" not in result.err


def test_validate_with_config_reports_checks_naming_unknown_sources(tmp_path: Path) -> None:
    """`validate --config` names each check whose source the config lacks, at its line."""
    envs = tmp_path / "environments"
    envs.mkdir()
    write(envs, "production.yaml", HEADER + (
        "target: {stage: Production}\nverify:\n  duration: 10m\n  checks:\n"
        "    - source: monitoring\n      query: 'up{job=\"{model}\"}'\n      min: 1\n"
        "    - source: quality\n      path: $.ok\n      min: 1\nmodels: {fraud: 1}\n"))
    config = tmp_path / "config.yaml"
    config.write_text("registries: {default: {tracking_uri: 'sqlite:///r.db'}}\n"
                      "verification_sources:\n  monitoring: {prometheus: http://p:9090}\n")
    result = run_cli("validate", str(envs), "--config", str(config))
    assert result.code == 1 and "Traceback" not in result.err
    assert f"{envs}/production.yaml:10: verify check names source 'quality', which the " \
           "controller config does not define" in result.err
    config.write_text(config.read_text() + "  quality: {http: 'http://q/{model}'}\n")
    assert run_cli("validate", str(envs), "--config", str(config)).code == 0


@pytest.mark.parametrize("duration, said", [
    ("9" * 300 + "d", "is longer than ten years (3653d), which cannot be evaluated"),
    ("3654d", "is longer than ten years (3653d), which cannot be evaluated"),
    ("0s", "duration '0s' is zero"),
])
def test_a_window_duration_that_cannot_be_represented_is_invalid(
        tmp_path: Path, duration: str, said: str) -> None:
    """A deny window lasting hundreds of digits of days (or over ten years, or zero) fails
    validation at the duration's file:line instead of being ignored at run time."""
    path = write(tmp_path, "production.yaml", HEADER + "target:\n  alias: champion\n"
                 "promotion:\n  windows:\n    - deny: \"0 17 * * FRI\"\n"
                 f"      duration: {duration}\n")
    result = run_cli("validate", str(tmp_path))
    assert result.code == 1, result.out
    assert f"{path}:8: " in result.err and said in result.err, result.err
    assert "Traceback" not in result.err and "9" * 60 not in result.err


@pytest.mark.parametrize("name", ["..", ".hidden", "a..b"])
def test_an_environment_file_name_that_is_hidden_or_ambiguous_is_invalid(
        tmp_path: Path, name: str) -> None:
    """`..yaml` (the environment '.'), `.hidden.yaml` and `a..b.yaml` fail validation at
    file:1 with the fix (rename the file), instead of breaking proposal branches later."""
    path = write(tmp_path, f"{name}.yaml", HEADER + "target:\n  alias: canary\n")
    result = run_cli("validate", str(tmp_path))
    assert result.code == 1, result.out
    assert f"{path}:1: environment name" in result.err and "rename the file" in result.err
