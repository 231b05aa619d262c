"""`promotion.windows` in environment files: loaded with their lines, and every bad cron,
duration or time zone a `file:line` diagnostic."""

from __future__ import annotations

from mlflow_gitops.core.model import Window
from mlflow_gitops.desired.loader import load_texts
from mlflow_gitops.desired.schema import json_schema

HEADER = "apiVersion: mlflow-gitops/v1\nkind: Environment\ntarget:\n  stage: Production\n"


def test_windows_load_with_defaults_and_lines() -> None:
    """A deny and an allow window load; the time zone defaults to UTC."""
    state, problems = load_texts({"envs/production.yaml": HEADER + (
        "promotion:\n"
        "  windows:\n"
        "    - deny: \"0 17 * * FRI\"\n"
        "      duration: 64h\n"
        "      timezone: Europe/Berlin\n"
        "    - allow: \"0 8 * * MON-FRI\"\n"
        "      duration: 9h30m\n"
        "models:\n  m: 1\n")})
    assert problems == [] and state is not None
    promotion = state.environments[0].promotion
    assert promotion is not None
    assert promotion.windows == (
        Window("deny", "0 17 * * FRI", 64 * 3600, "Europe/Berlin", line=7),
        Window("allow", "0 8 * * MON-FRI", 9 * 3600 + 1800, "UTC", line=10))


def test_bad_cron_duration_and_timezone_are_file_line_errors() -> None:
    """Each bad field is reported at its own line, all at once, with what to write instead."""
    _, problems = load_texts({"envs/production.yaml": HEADER + (
        "promotion:\n"
        "  windows:\n"
        "    - deny: \"0 25 * * FRI\"\n"            # line 7
        "      duration: 64h\n"
        "    - allow: \"0 8 * *\"\n"                 # line 9
        "      duration: soon\n"                    # line 10
        "      timezone: Europe/Atlantis\n"         # line 11
        "    - deny: \"0 0 30 2 *\"\n"               # line 12
        "      duration: 1h\n"
        "    - duration: 1h\n"                      # line 14
        "    - deny: \"0 1 * * *\"\n"               # line 15
        "      duration: 1h\n"
        "      timezone: ../../etc/passwd\n"        # line 17
        "models:\n  m: 1\n")})
    found = [(p.file, p.line, p.message) for p in problems]
    assert [(line, msg.split(":")[0]) for _, line, msg in found] == [
        (7, "promotion.windows[0].deny"), (9, "promotion.windows[1].allow"),
        (10, "promotion.windows[1].duration"), (11, "promotion.windows[1].timezone"),
        (12, "promotion.windows[2].deny"), (14, "promotion.windows[3]"),
        (17, "promotion.windows[4].timezone")], found
    text = "\n".join(msg for _, _, msg in found)
    assert "cron '0 25 * * FRI' is not valid" in text
    assert "cron '0 8 * *' needs five fields" in text
    assert "duration 'soon' is not a duration: write e.g. 64h" in text
    assert "timezone 'Europe/Atlantis' is not an IANA time zone" in text
    assert "never matches a date" in text
    assert "exactly one of 'allow' or 'deny'" in text


def test_published_schema_describes_windows() -> None:
    """Editors see the windows: one of allow/deny, a duration pattern, a time zone."""
    window = json_schema()["$defs"]["WindowSpec"]
    assert window["oneOf"] == [{"required": ["allow"]}, {"required": ["deny"]}]
    assert window["required"] == ["duration"]
    assert set(window["properties"]) == {"allow", "deny", "duration", "timezone"}
