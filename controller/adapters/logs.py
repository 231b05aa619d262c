"""Log lines for people (`text`) and for log pipelines (`json`), with secrets masked.

Code logs through the standard `logging` module and attaches structured fields with
`logger.info("applied change", extra={"fields": {"model": m, "to": v}})`. JSON output is
one object per line: `time` (ISO 8601 UTC), `level`, `logger`, `message`, then the fields
at top level. Text output is one readable line with the fields as key=value.

A `Redactor` filter on the root handlers replaces every registered secret (tokens read from
files) with `***` in the message, its arguments, the fields and exception text: whatever
a library puts in an error message, the token never reaches the output. It also masks any
credential inside a URI (`http://alice:***@host`, `?access_token=***`) whether or not it was
registered (mlflow_gitops.adapters.uris).

MLflow installs its own stderr handler on the `mlflow` logger, which would bypass both the
JSON format and the redaction; `configure` routes those loggers through the root handlers
instead (at WARNING and above)."""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import IO, Any

from mlflow_gitops.adapters.uris import scrub

MASK = "***"
FORMATS = ("text", "json")
_HANDLER_MARK = "_mlflow_gitops_handler"


class Redactor(logging.Filter):
    """Masks registered secrets in every record that passes the handler it is installed on."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._secrets: tuple[str, ...] = ()
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | bytes) -> None:
        """Register a secret; surrounding whitespace is ignored and empty secrets are skipped."""
        text = secret.decode("utf-8", "replace") if isinstance(secret, bytes) else secret
        text = text.strip()
        if not text:
            return
        with self._lock:
            # Longest first, so a secret containing another is masked whole.
            self._secrets = tuple(sorted({*self._secrets, text}, key=len, reverse=True))

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return scrub(text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not lose the line
            message = f"{record.msg} {record.args}"
        record.msg = self.redact(message)
        record.args = None
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            record.fields = {key: self._redact_value(value) for key, value in fields.items()}
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True

    def _redact_value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {k: self._redact_value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._redact_value(v) for v in value]
        return value


def _utc_iso(created: float) -> str:
    moment = datetime.fromtimestamp(created, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    return dict(fields) if isinstance(fields, dict) else {}


class JsonFormatter(logging.Formatter):
    """One JSON object per line; the core keys win over a field of the same name."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = _fields(record)
        entry.update(time=_utc_iso(record.created), level=record.levelname,
                     logger=record.name, message=record.getMessage())
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`2024-05-01T12:00:00.000Z INFO mlflow_gitops.controller: applied change model=churn to=3`."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_utc_iso(record.created)} {record.levelname} {record.name}: "
        line += record.getMessage()
        for key, value in _fields(record).items():
            line += f" {key}={_text_value(value)}"
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line += "\n" + record.exc_text
        if record.stack_info:
            line += "\n" + record.stack_info
        return line


def _text_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if text == "" or any(c.isspace() or c in '"=' for c in text):
        return json.dumps(text, ensure_ascii=False)
    return text


def configure(format: str = "text", level: str | int = "INFO", stream: IO[str] | None = None,
              redactor: Redactor | None = None) -> Redactor:
    """Send every log record to `stream` (stderr) in `format`; returns the installed Redactor.

    Calling it again replaces the handler it installed before (and keeps other handlers, but
    puts the redactor on them too), so tests and the CLI can reconfigure freely."""
    if format not in FORMATS:
        raise ValueError(f"unknown log format {format!r}; expected one of {FORMATS}")
    redactor = redactor or Redactor()
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if format == "json" else TextFormatter())
    setattr(handler, _HANDLER_MARK, True)
    root.addHandler(handler)
    for each in root.handlers:
        for stale in [f for f in each.filters if isinstance(f, Redactor) and f is not redactor]:
            each.removeFilter(stale)
        each.addFilter(redactor)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    _adopt_library_loggers()
    return redactor


# Loggers that libraries give a handler of their own (and propagate=False), so their lines
# would skip our format and our redactor.
_LIBRARY_LOGGERS = ("mlflow", "alembic", "huey", "sqlalchemy.engine")


def _adopt_library_loggers() -> None:
    os.environ["MLFLOW_CONFIGURE_LOGGING"] = "false"  # for an mlflow imported from now on
    for name in _LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
        logger.setLevel(logging.WARNING)
