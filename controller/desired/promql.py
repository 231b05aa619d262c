"""PromQL as a `verify:` check writes it: an offline check that a query can parse (balanced
brackets, closed strings, known placeholders) and the one function that fills in
`{model}`, `{version}` and `{environment}`.

A placeholder may only stand inside a quoted string (`version="{version}"`), and its value
is escaped for that string's quote: a model name from a pull request can never close the
string and add matchers or operators of its own. Raw (backtick) strings cannot escape
anything, so placeholders are not allowed there. Pure: text in, text out."""

from __future__ import annotations

import re
from collections.abc import Mapping

PLACEHOLDERS = ("model", "version", "environment")
MAX_QUERY = 4000  # characters; a real query is a line or two
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_PAIRS = {"(": ")", "[": "]", "{": "}"}


def query_problem(query: str) -> str | None:
    """Why `query` cannot be a check's PromQL, or None."""
    if not query.strip():
        return "query is empty: write an instant PromQL query"
    if len(query) > MAX_QUERY:
        return f"query is {len(query)} characters long; at most {MAX_QUERY}"
    stack: list[tuple[str, int]] = []
    i = 0
    while i < len(query):
        char = query[i]
        if char in "\"'`":
            end, problem = _string_end(query, i)
            if problem:
                return problem
            i = end + 1
            continue
        if char == "{" and (m := _PLACEHOLDER.match(query, i)) and m.group(1) in PLACEHOLDERS:
            return (f"placeholder {m.group(0)} must stand inside a quoted label value, "
                    f"e.g. {m.group(1)}=\"{m.group(0)}\" (its value is escaped there)")
        if char in _PAIRS:
            stack.append((char, i))
        elif char in _PAIRS.values():
            if not stack or _PAIRS[stack[-1][0]] != char:
                return f"'{char}' at character {i + 1} closes nothing: check the brackets"
            stack.pop()
        elif char == "#":
            return "comments (#) are not allowed in a check's query"
        i += 1
    if stack:
        opened, at = stack[-1]
        return f"'{opened}' at character {at + 1} is never closed: check the brackets"
    return None


def _string_end(query: str, start: int) -> tuple[int, str | None]:
    """Index of the quote that closes the string opening at `start`, or why there is none."""
    quote = query[start]
    i = start + 1
    while i < len(query):
        char = query[i]
        if char == "\\" and quote != "`":
            i += 2
            continue
        if char == "\n" and quote != "`":
            break
        if char == quote:
            body = query[start + 1:i]
            return i, _placeholder_problem(body, quote)
        i += 1
    return start, f"the string opened with {quote} at character {start + 1} is never closed"


def _placeholder_problem(body: str, quote: str) -> str | None:
    for match in _PLACEHOLDER.finditer(body):
        name = match.group(1)
        if name not in PLACEHOLDERS:
            return (f"unknown placeholder {match.group(0)}: use {{model}}, {{version}} or "
                    "{environment}")
        if quote == "`":
            return (f"placeholder {match.group(0)} cannot stand in a raw `string` (nothing "
                    "can be escaped there): use double quotes")
    return None


def render(query: str, values: Mapping[str, str]) -> str:
    """`query` with each placeholder inside a string replaced by its value, escaped for that
    string. The query must have passed `query_problem`."""
    out: list[str] = []
    i = 0
    while i < len(query):
        char = query[i]
        if char in "\"'`":
            end, _ = _string_end(query, i)
            body = query[i + 1:end]
            if char != "`":
                body = _fill(body, values, char)
            out.append(char + body + char)
            i = end + 1
            continue
        out.append(char)
        i += 1
    return "".join(out)


def _fill(body: str, values: Mapping[str, str], quote: str) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        return escape(values[name], quote) if name in values else match.group(0)

    return _PLACEHOLDER.sub(one, body)


def escape(value: str, quote: str = '"') -> str:
    """`value` as the inside of a PromQL string quoted with `quote` (Go's escapes)."""
    text = value.replace("\\", "\\\\").replace(quote, "\\" + quote)
    return text.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
