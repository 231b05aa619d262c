"""Credentials inside URIs: found, scrubbed everywhere, refused where they do not belong."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mlflow_gitops.adapters.config import load_config
from mlflow_gitops.adapters.git.source import GitSource
from mlflow_gitops.adapters.logs import Redactor
from mlflow_gitops.adapters.uris import (
    credentials_in,
    scrub,
    secret_query_keys,
    without_credentials,
)
from mlflow_gitops.core.errors import ConfigError


@pytest.mark.parametrize("text, shown", [
    ("API request to http://alice:PW123@host:5000/api/2.0 failed",
     "API request to http://***@host:5000/api/2.0 failed"),
    ("https://ghp_tok@github.com/a/b.git", "https://***@github.com/a/b.git"),
    ("postgresql://u:pa55@db/x", "postgresql://u:***@db/x"),
    ("https://h/r.git?private_token=glpat-1&x=1", "https://h/r.git?private_token=***&x=1"),
    ("https://h/r?X-Amz-Signature=abc&ok=1", "https://h/r?X-Amz-Signature=***&ok=1"),
    ("http://host:5000/path?run=3 and mail@example.com", None),
])
def test_scrub_masks_userinfo_and_secret_query_values(text: str, shown: str | None) -> None:
    """Passwords, http userinfo and secret-looking query values are masked; the rest stays."""
    assert scrub(text) == (text if shown is None else shown)


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Zs", "Cc"),
                                      blacklist_characters="/@?#&=:'\"<>"),
               min_size=4, max_size=20))
def test_a_uri_password_never_survives_scrub_or_the_redactor(password: str) -> None:
    """Whatever the password, neither scrub nor an empty Redactor lets it through."""
    uri = f"http://alice:{password}@registry:5000/api/2.0/mlflow"
    shown = "failed: http://***@registry:5000/api/2.0/mlflow: refused"
    assert scrub(f"failed: {uri}: refused") == shown
    assert Redactor().redact(f"failed: {uri}: refused") == shown
    assert without_credentials(uri) == "http://registry:5000/api/2.0/mlflow"


def test_credentials_in_lists_raw_and_decoded_values() -> None:
    """The redactor learns a URI password in both spellings, and a bare http token."""
    assert credentials_in("http://alice:p%40ssw0rd@h") == ["p%40ssw0rd", "p@ssw0rd"]
    assert credentials_in("https://tok12345@h/x") == ["tok12345"]
    assert credentials_in("https://h/x?access_token=abcdef&page=2") == ["abcdef"]
    assert secret_query_keys("https://h/x?access_token=1&ref=main") == ["access_token"]


@pytest.mark.parametrize("url", [
    "https://github.com/a/b.git?access_token=ghp_LeakLeak",
    "https://gitlab.com/a/b.git?private_token=glpat-LeakLeak",
    "https://h/a/b.git?ref=main&oauth_token=LeakLeak",
])
def test_git_urls_with_a_token_in_the_query_are_refused(tmp_path: Path, url: str) -> None:
    """A token in a git URL's query is a ConfigError that does not show the token."""
    with pytest.raises(ConfigError) as caught:
        GitSource(url, "main", "environments", tmp_path / "cache")
    assert "LeakLeak" not in str(caught.value) and "in its query" in str(caught.value)


def test_config_refuses_query_tokens_and_bad_intervals_with_a_line(tmp_path: Path) -> None:
    """The config file is read as hostile input too: every problem is path:line, one line."""
    cases = {
        "registries:\n  prod:\n    tracking_uri: http://h?access_token=LeakLeak\n":
            (":3: registries.prod.tracking_uri: the tracking URI carries a credential"),
        "interval: 0\n": ":1: interval: Input should be greater than 0",
        "interval: !!int abc\n": ":1: invalid value: 'abc' is not a whole number",
        "registries: " + "[" * 2000 + "\n": ":1: invalid YAML",
    }
    for text, words in cases.items():
        path = tmp_path / "config.yaml"
        path.write_text(text)
        with pytest.raises(ConfigError) as caught:
            load_config(str(path))
        assert f"{path}{words}" in str(caught.value) and "LeakLeak" not in str(caught.value)


def test_the_json_log_masks_uri_passwords_and_survives_bad_format_strings() -> None:
    """No secret registered: a URI password is still masked; a bad format string still logs."""
    import io
    import json
    import logging

    from mlflow_gitops.adapters.logs import configure

    root = logging.getLogger()
    saved = list(root.handlers), root.level, {h: list(h.filters) for h in root.handlers}
    out = io.StringIO()
    configure("json", "INFO", stream=out)
    try:
        logging.getLogger("t").error("call to http://alice:Xy9Secret@h:5000/api failed")
        logging.getLogger("t").error("bad %d", "text")
    finally:
        for handler in root.handlers[:]:
            if handler not in saved[0]:
                root.removeHandler(handler)
        for handler, kept in saved[2].items():
            handler.filters[:] = kept
        root.setLevel(saved[1])
    lines = [json.loads(line)["message"] for line in out.getvalue().splitlines()]
    assert lines == ["call to http://***@h:5000/api failed", "bad %d ('text',)"]
