"""Verification sources (the servers `verify:` checks query, named in the controller config):
a Prometheus server answering instant PromQL queries, or an HTTP endpoint answering JSON.

Prometheus: `GET <base>/api/v1/query?query=<q>` answers
`{"status": "success", "data": {"resultType": "vector", "result": [{"metric": {...},
"value": [<unix time>, "<number as a string>"]}]}}` (a `scalar` result is
`[<unix time>, "<number>"]`); an error is `{"status": "error", "errorType", "error"}` with
HTTP 400, 422 or 503 (https://prometheus.io/docs/prometheus/latest/querying/api/).

Every failure to measure — the source down, an HTTP error, no series, NaN, an answer of
the wrong shape — is "no value" with the reason in a few words: inconclusive, never a pass,
never an exception. Tokens come from files and never appear in a reason."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import requests
from mlflow_gitops.adapters.config import VerificationSourceConfig
from mlflow_gitops.adapters.secrets import read_secret
from mlflow_gitops.adapters.uris import scrub
from mlflow_gitops.core.errors import ConfigError
from mlflow_gitops.core.model import Check
from mlflow_gitops.desired import jsonpath, promql

MAX_ANSWER = 4 * 1024 * 1024  # bytes of a source's answer read at most
MAX_SERIES = 1000


class Sources:
    """Every configured verification source: `measure(check, values)` → (value, why none)."""

    def __init__(self, config: Mapping[str, VerificationSourceConfig],
                 session: requests.Session | None = None) -> None:
        self._config = dict(config)
        self._session = session or requests.Session()
        self._tokens = {name: _token(name, c.token_file) for name, c in self._config.items()}

    def names(self) -> list[str]:
        return sorted(self._config)

    def measure(self, check: Check, values: Mapping[str, str]) -> tuple[float | None, str]:
        """The check's current value, or (None, why): no data, or the source is down."""
        source = self._config.get(check.source)
        if source is None:
            return None, f"source '{check.source}' is not configured"
        headers = {"Accept": "application/json"}
        if token := self._tokens.get(check.source):
            headers["Authorization"] = f"Bearer {token}"
        if source.prometheus is not None:
            url = source.prometheus.rstrip("/") + "/api/v1/query"
            params = {"query": promql.render(check.query or "", values)}
        else:
            url, params = _fill(source.http or "", values), {}
        try:
            response = self._session.get(url, params=params, headers=headers,
                                         timeout=source.timeout, stream=True)
            body = response.raw.read(MAX_ANSWER + 1, decode_content=True)
        except requests.RequestException as exc:
            return None, f"source down: {_short(exc)}"
        finally:
            if "response" in locals():
                response.close()
        if len(body) > MAX_ANSWER:
            return None, "the answer is too large"
        try:
            document = json.loads(body) if body else None
        except ValueError:
            return None, f"source answered HTTP {response.status_code} without JSON"
        if source.prometheus is not None:
            return _prometheus_value(response.status_code, document, check)
        if response.status_code != 200:
            return None, f"source answered HTTP {response.status_code}"
        path = check.path or source.json_path or "$"
        value = jsonpath.number_at(document, path)
        return (value, "") if value is not None and math.isfinite(value) else \
            (None, f"no number at {path}")


def _prometheus_value(status: int, document: Any, check: Check) -> tuple[float | None, str]:
    if not isinstance(document, dict):
        return None, f"Prometheus answered HTTP {status} without a result"
    if document.get("status") != "success":
        error = str(document.get("error") or f"HTTP {status}")
        return None, f"query failed: {' '.join(error.split())[:160]}"
    data = document.get("data")
    if not isinstance(data, dict):
        return None, "Prometheus answered without data"
    kind, result = data.get("resultType"), data.get("result")
    samples: list[Any] = []
    if kind == "scalar" and isinstance(result, list):
        samples = [result]
    elif kind == "vector" and isinstance(result, list):
        samples = [s.get("value") for s in result[:MAX_SERIES] if isinstance(s, dict)]
    else:
        return None, f"the query gives a {kind}, not a number or an instant vector"
    numbers = [n for n in (_sample(s) for s in samples) if n is not None]
    if not numbers:
        return None, "no data"
    return _worst(check, numbers), ""


def _sample(sample: Any) -> float | None:
    if not isinstance(sample, list) or len(sample) != 2:
        return None
    try:
        value = float(sample[1])
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _worst(check: Check, numbers: list[float]) -> float:
    """Of several series, the one furthest outside (or nearest to) the check's bounds: every
    series must stay within them."""
    if check.max is not None:
        return max(numbers)
    return min(numbers)


def _fill(template: str, values: Mapping[str, str]) -> str:
    out = template
    for key, value in values.items():
        out = out.replace("{" + key + "}", quote(value, safe=""))
    return out


def _token(name: str, token_file: str | None) -> str | None:
    if token_file is None:
        return None
    try:
        token = read_secret(token_file)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"verification source '{name}': cannot read token_file "
                          f"{token_file}: {getattr(exc, 'strerror', None) or 'not UTF-8 text'}"
                          ) from exc
    if not token:
        raise ConfigError(f"verification source '{name}': token_file {token_file} is empty")
    return token


def _short(exc: BaseException) -> str:
    text = str(exc)
    for marker, words in (("Connection refused", "connection refused"),
                          ("timed out", "timed out"), ("Name or service", "unknown host"),
                          ("Max retries", "cannot connect")):
        if marker in text:
            return words
    return scrub(" ".join(text.split()))[:120]
