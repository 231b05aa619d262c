"""Credentials inside URIs: find them and scrub them.

Two places a URI carries a secret: its userinfo (`http://alice:PW@host`, `https://TOKEN@host`)
and its query string (`?access_token=…`, `?private_token=…`, any key that names a token,
secret, password, key or signature). `scrub` masks both anywhere in a text, so it can run
over error messages, log lines and /status values that merely contain a URI; it is the one
scrubber (git's messages, MLflow's, the forge's and the CLI's errors all go through it).
`without_credentials` is for showing one URI on its own (a label, a tag value)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, unquote, urlsplit

MASK = "***"

# http(s): every userinfo is a credential (`https://TOKEN@host` is how tokens are often
# written); other schemes: the password part of `user:password@`.
_HTTP_USERINFO = re.compile(r"(?i)\b(https?://)[^/\s@'\"<>]+@")
_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s@:'\"<>]*):[^/\s@'\"<>]*@")
_USERINFO_PART = re.compile(r"(?i)^([a-z][a-z0-9+.-]*://)[^/?#]*@")
SECRET_KEY = re.compile(
    r"(?i)token|secret|passw|pwd|key|auth|sig|credential|session|cookie|code")
_QUERY_SECRET = re.compile(
    r"(?i)([?&;][^=&\s#?'\"<>]*(?:token|secret|passw|pwd|key|auth|sig|credential|session"
    r"|cookie|code)[^=&\s#?'\"<>]*=)[^&\s#'\"<>]+")


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every URI credential (userinfo, secret-looking query values) masked, and
    every one of `secrets` (e.g. the token in use) wherever it appears."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    if "://" not in text and "=" not in text:
        return text
    text = _HTTP_USERINFO.sub(rf"\1{MASK}@", text)
    text = _PASSWORD.sub(rf"\1:{MASK}@", text)
    return _QUERY_SECRET.sub(rf"\1{MASK}", text)


def secret_query_keys(uri: str) -> list[str]:
    """Query keys of `uri` that look like they carry a credential (e.g. access_token)."""
    try:
        query = urlsplit(uri).query
    except ValueError:
        return []
    return [key for key, _ in parse_qsl(query, keep_blank_values=True)
            if SECRET_KEY.search(key)]


def credentials_in(uri: str) -> list[str]:
    """The secret values inside `uri` (userinfo password or token, secret query values), raw
    and percent-decoded, so a log redactor can mask them wherever they turn up."""
    try:
        parts = urlsplit(uri)
        password, username = parts.password, parts.username
    except ValueError:
        return []
    found = [password] if password else []
    if parts.scheme in ("http", "https") and username and not password:
        found.append(username)  # https://TOKEN@host
    found += [value for key, value in parse_qsl(parts.query, keep_blank_values=True)
              if SECRET_KEY.search(key) and value]
    out: list[str] = []
    for value in found:
        for form in (value, unquote(value)):
            if len(form) >= 4 and form not in out:  # tiny values would mask ordinary text
                out.append(form)
    return out


def without_credentials(uri: str) -> str:
    """`uri` for display or a tag value: no userinfo and no secret-looking query values."""
    return scrub(_USERINFO_PART.sub(r"\1", uri.strip()))
