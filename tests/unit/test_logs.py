"""Log output in text and JSON, and secrets masked wherever they appear."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime

import pytest
from mlflow_gitops.adapters.logs import Redactor, configure

TOKEN = "ghp_TopSecretToken123"


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    filters = {h: list(h.filters) for h in handlers}
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    for handler, kept in filters.items():
        handler.filters[:] = kept
    root.setLevel(level)


def _lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_json_is_one_object_per_line_with_fields_at_top_level() -> None:
    """JSON lines carry time (UTC ISO 8601), level, logger, message and the extra fields."""
    out = io.StringIO()
    configure("json", "INFO", stream=out)
    logging.getLogger("mlflow_gitops.loop.runner").info(
        "applied %s", "change", extra={"fields": {"model": "churn", "to": 3}})
    logging.getLogger("mlflow_gitops.loop.runner").debug("not shown at INFO")
    [line] = _lines(out)
    entry = json.loads(line)
    assert entry["level"] == "INFO"
    assert entry["logger"] == "mlflow_gitops.loop.runner"
    assert entry["message"] == "applied change"
    assert entry["model"] == "churn" and entry["to"] == 3
    assert entry["time"].endswith("Z")
    assert datetime.fromisoformat(entry["time"].replace("Z", "+00:00")).utcoffset().seconds == 0


def test_json_fields_never_replace_the_core_keys() -> None:
    """A field named like a core key does not overwrite the message or the level."""
    out = io.StringIO()
    configure("json", "INFO", stream=out)
    logging.getLogger("x").warning("real", extra={"fields": {"message": "fake", "level": "X"}})
    entry = json.loads(_lines(out)[0])
    assert (entry["message"], entry["level"]) == ("real", "WARNING")


def test_json_includes_the_exception() -> None:
    """An exception logged with exc_info ends up in the same JSON object."""
    out = io.StringIO()
    configure("json", "INFO", stream=out)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("x").exception("failed")
    [line] = _lines(out)
    entry = json.loads(line)
    assert "RuntimeError: boom" in entry["exception"]


def test_text_is_one_readable_line_with_key_values() -> None:
    """Text lines read as time, level, logger, message, then key=value (quoted when needed)."""
    out = io.StringIO()
    configure("text", "DEBUG", stream=out)
    logging.getLogger("controller.git").debug(
        "fetched", extra={"fields": {"sha": "abc123", "note": "two words", "n": 2}})
    [line] = _lines(out)
    assert " DEBUG controller.git: fetched sha=abc123 note=\"two words\" n=2" in line
    assert line.split(" ", 1)[0].endswith("Z")


def test_unknown_format_is_refused() -> None:
    """Only text and json exist."""
    with pytest.raises(ValueError, match="yaml"):
        configure("yaml")


def test_reconfiguring_replaces_the_handler() -> None:
    """Calling configure twice does not print each line twice."""
    first, second = io.StringIO(), io.StringIO()
    configure("text", "INFO", stream=first)
    configure("json", "INFO", stream=second)
    logging.getLogger("x").info("once")
    assert first.getvalue() == ""
    assert len(_lines(second)) == 1


def test_redactor_masks_secrets_in_message_args_fields_and_exceptions() -> None:
    """A registered token is replaced by *** wherever a log record carries it."""
    out = io.StringIO()
    redactor = configure("json", "INFO", stream=out)
    redactor.add(TOKEN + "\n")  # as read from a file
    log = logging.getLogger("controller.git")
    log.info("url https://" + TOKEN + "@example.com")
    log.info("token %s", TOKEN, extra={"fields": {"auth": f"Bearer {TOKEN}",
                                                   "nested": {"list": [TOKEN]}}})
    try:
        raise ValueError(f"server said {TOKEN}")
    except ValueError:
        log.exception("failed with %r", TOKEN)
    text = out.getvalue()
    assert TOKEN not in text
    assert text.count("***") >= 6
    assert [json.loads(line)["message"][:6] for line in _lines(out)] == ["url ht", "token ",
                                                                        "failed"]


def test_redactor_applies_to_text_output_and_later_secrets() -> None:
    """Secrets registered after configure are masked too, in text output as well."""
    out = io.StringIO()
    redactor = configure("text", "INFO", stream=out)
    logging.getLogger("x").info("before %s", "visible")
    redactor.add(TOKEN)
    logging.getLogger("x").info("after %s", TOKEN, extra={"fields": {"t": TOKEN}})
    assert TOKEN not in out.getvalue()
    assert "before visible" in out.getvalue()


def test_redactor_ignores_empty_secrets_and_masks_longest_first() -> None:
    """Empty secrets change nothing; a secret containing another is masked whole."""
    redactor = Redactor(["", "  ", "abc", "abcdef"])
    assert redactor.redact("x abcdef y abc") == "x *** y ***"
    assert Redactor([""]).redact("unchanged") == "unchanged"
