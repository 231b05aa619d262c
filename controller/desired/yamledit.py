"""Edit one model's version in an environment file and keep everything else byte for byte.

`promote` and `rollback` turn a reviewer's pull request into a one-line diff, so the edit must
not reflow the file. ruamel.yaml's round-trip dump does not guarantee that (it re-indents
nested mappings and sequences to one width), so ruamel only *locates* things here: it parses
the text and reports the line and column of every key and value; the change itself is a
minimal splice of the original text at those positions. Each edit is re-parsed as a check.
Pure: text in, text out; no I/O."""

from __future__ import annotations

import re
from typing import Any

from mlflow_gitops.core.errors import ConfigError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import MarkedYAMLError, YAMLError

# ruamel counts these as line breaks; columns restart after each of them.
_BREAKS = "\n\r\x85\u2028\u2029"
_LINE = re.compile(rf"[^{_BREAKS}]*(?:\r\n|[{_BREAKS}])|[^{_BREAKS}]+$")
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\']|\'\')*\'')
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_YAML11_WORDS = {"y", "n", "yes", "no", "true", "false", "on", "off", "null"}


def model_version(text: str, model: str, section: str = "models") -> int | None:
    """The version `model` is assigned in this file; None when it lists no version for it.
    `section`: "models", or "prompts" for a prompt."""
    models = _models(_load(text), section)
    value = models.get(model) if models is not None else None
    if isinstance(value, CommentedMap):
        value = value.get("version")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{section}.{model}: the version is not a positive integer: {value!r}")
    return value


def set_model_version(text: str, model: str, version: int, section: str = "models") -> str:
    """`text` with `model` at `version`; short form stays short, long form changes `version:`."""
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ConfigError(f"version must be a positive integer, not {version!r}")
    if not model:
        raise ConfigError("the model name is empty")
    root = _load(text)
    lines = _LINE.findall(text)
    models = _models(root, section)
    if models is not None and model in models:
        value = models[model]
        owner, key = (value, "version") if isinstance(value, CommentedMap) else (models, model)
        if isinstance(value, CommentedMap) and "version" not in value:
            _insert_version(lines, value, models.lc.value(model), version)
        else:
            _replace_value(lines, owner, key, str(version))
    else:
        _append_model(lines, root, models, model, version, section)
    result = "".join(lines)
    if model_version(result, model, section) != version:
        raise ConfigError(f"could not edit {section}.{model} safely: please edit the file by "
                          "hand")
    return result


def remove_model(text: str, model: str, section: str = "models") -> str:
    """`text` without the entry of `model` (its own lines only); unchanged when it is absent."""
    models = _models(_load(text), section)
    if models is None or model not in models:
        return text
    lines = _LINE.findall(text)
    line, col = models.lc.key(model)
    if _is_flow(lines, models):
        start = _offset(lines, line, col)
        end = _value_end(lines, models, model)
        joined = "".join(lines)
        after = re.match(r"[ \t]*,[ \t]*", joined[end:])
        if after:
            end += after.end()
        else:
            before = re.search(r",[ \t]*$", joined[:start])
            start = before.start() if before else start
        result = joined[:start] + joined[end:]
    else:
        last = _block_end(lines, line, col)
        del lines[line : last + 1]
        result = "".join(lines)
    if model_version(result, model, section) is not None:
        raise ConfigError(f"could not remove {section}.{model} safely: please edit the file by "
                          "hand")
    return result


def _load(text: str) -> CommentedMap:
    try:
        root = YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}: " if mark else ""
        raise ConfigError(f"invalid YAML: {where}{exc.problem or exc}") from exc
    except YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}") from exc
    if not isinstance(root, CommentedMap):
        raise ConfigError("not an environment file: expected a mapping with apiVersion, kind, "
                          "target and models")
    return root


def _models(root: CommentedMap, section: str = "models") -> CommentedMap | None:
    models = root.get(section)
    if models is not None and not isinstance(models, CommentedMap):
        kind = "a list" if isinstance(models, list) else f"a {type(models).__name__}"
        raise ConfigError(f"{section} must map {section[:-1]} names to versions (e.g. "
                          "`fraud-detector: 3`), "
                          f"not {kind}")
    for name, value in (models or {}).items():
        if isinstance(value, list):
            raise ConfigError(f"{section}.{name} must be a version (`{name}: 3`) or a mapping "
                              "(`version: 3`), not a list")
    return models


def _offset(lines: list[str], line: int, col: int) -> int:
    return sum(len(text) for text in lines[:line]) + col


def _indent(text: str) -> int:
    return len(text) - len(text.lstrip(" "))


def _is_flow(lines: list[str], mapping: CommentedMap) -> bool:
    """True for `{...}`: ruamel places a flow mapping on its `{`, a block one on its first key."""
    line, col = mapping.lc.line, mapping.lc.col
    return lines[line][col:col + 1] == "{" if mapping else True


def _colon_after_key(text: str, col: int) -> int:
    """Column of the `:` that ends the key starting at `col`."""
    end = _token_end(text, col, flow=False)
    colon = text.find(":", end)
    if colon < 0:
        raise ConfigError("could not find the ':' after a key: please edit the file by hand")
    return colon


def _token_end(text: str, col: int, flow: bool) -> int:
    """End column of the scalar token (quoted or plain) that starts at `col` on this line."""
    if text[col:col + 1] in ("'", '"'):
        quoted = _QUOTED.match(text, col)
        if not quoted:
            raise ConfigError("a quoted value spans lines here: please edit the file by hand")
        return quoted.end()
    stops = r"[ \t]+#|:(?=[\s,\]}]|$)|[\r\n\x85\u2028\u2029]" + (r"|[ \t]*[,\]}]" if flow else "")
    match = re.compile(stops).search(text, col)
    end = match.start() if match else len(text)
    return len(text[:end].rstrip(" \t"))


def _value_end(lines: list[str], mapping: CommentedMap, key: Any) -> int:
    """Offset just past the value of `key` in a flow mapping (a scalar or a nested `{...}`)."""
    line, col = mapping.lc.value(key)
    if not isinstance(mapping[key], CommentedMap):
        return _offset(lines, line, _token_end(lines[line], col, flow=True))
    joined, depth, i = "".join(lines), 0, _offset(lines, line, col)
    while i < len(joined):
        ch = joined[i]
        if ch in ("'", '"') and (quoted := _QUOTED.match(joined, i)):
            i = quoted.end()
            continue
        if ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ConfigError("unbalanced braces in a flow mapping: please edit the file by hand")


def _line_col(lines: list[str], offset: int) -> tuple[int, int]:
    for number, text in enumerate(lines):
        if offset < len(text):
            return number, offset
        offset -= len(text)
    return len(lines) - 1, len(lines[-1]) + offset


def _replace_value(lines: list[str], mapping: CommentedMap, key: Any, new: str) -> None:
    key_line, key_col = mapping.lc.key(key)
    text = lines[key_line]
    line, col = mapping.lc.value(key)
    rest = lines[line][col:].strip() if line < len(lines) else ""
    if mapping[key] is None and (line != key_line or not rest or rest.startswith("#")):
        colon = _colon_after_key(text, key_col)  # `name:` with nothing after it
        lines[key_line] = f"{text[:colon + 1]} {new}{text[colon + 1:]}"
        return
    end = _token_end(lines[line], col, flow=_is_flow(lines, mapping))
    lines[line] = lines[line][:col] + new + lines[line][end:]


def _insert_version(
    lines: list[str], entry: CommentedMap, at: tuple[int, int], version: int
) -> None:
    """A long-form entry without `version:` gets one as its first key."""
    line, col = (at[0], at[1] + 1) if _is_flow(lines, entry) else (entry.lc.line, entry.lc.col)
    text = lines[line]
    if _is_flow(lines, entry):
        lines[line] = f"{text[:col]}version: {version}{', ' if entry else ''}{text[col:]}"
    else:
        lines.insert(line, f"{' ' * col}version: {version}{_newline(lines)}")


def _block_end(lines: list[str], line: int, col: int) -> int:
    """Last line of the block entry whose key is at (line, col): its deeper-indented lines."""
    last, i = line, line + 1
    while i < len(lines):
        text, content = lines[i], lines[i].strip()
        if content and not content.startswith("#") and _indent(text) <= col:
            break
        if text.strip() and _indent(text) > col:
            last = i
        i += 1
    return last


def _append_model(lines: list[str], root: CommentedMap, models: CommentedMap | None,
                  model: str, version: int, section: str = "models") -> None:
    nl, key = _newline(lines), _yaml_key(model)
    if models:
        if _is_flow(lines, models):
            last = list(models)[-1]
            end = _value_end(lines, models, last)
            line, col = _line_col(lines, end)
            lines[line] = f"{lines[line][:col]}, {key}: {version}{lines[line][col:]}"
            return
        last_key = max(models, key=lambda k: models.lc.key(k))
        line, col = models.lc.key(last_key)
        at = _block_end(lines, line, col) + 1
        _ensure_newline(lines, at, nl)
        lines.insert(at, f"{' ' * col}{key}: {version}{nl}")
        return
    indent = _indent_step(lines, root)
    if section in root:
        line, col = root.lc.key(section)
        colon = _colon_after_key(lines[line], col)
        text = lines[line]
        rest = text[colon + 1:]
        empty = re.match(r"[ \t]*(\{[ \t]*\}|~|null|Null|NULL)(?=[ \t]*(#|$|[\r\n]))", rest)
        if empty:
            rest = rest[empty.end():]
        lines[line] = text[:colon + 1] + rest
        _ensure_newline(lines, line + 1, nl)
        lines.insert(line + 1, f"{' ' * (col + indent)}{key}: {version}{nl}")
        return
    _ensure_newline(lines, len(lines), nl)
    lines.append(f"{section}:{nl}{' ' * indent}{key}: {version}{nl}")


def _ensure_newline(lines: list[str], at: int, nl: str) -> None:
    """The line before position `at` ends with a line break (the file's last line may not)."""
    if at > 0 and lines[at - 1][-1] not in _BREAKS:
        lines[at - 1] += nl


def _newline(lines: list[str]) -> str:
    return "\r\n" if lines and lines[0].endswith("\r\n") else "\n"  # the first line's style


def _indent_step(lines: list[str], root: CommentedMap) -> int:
    """The file's indentation width, read from its first nested block mapping (default 2)."""
    for key, value in root.items():
        if isinstance(value, CommentedMap) and value and not _is_flow(lines, value):
            return max(int(value.lc.col) - int(root.lc.key(key)[1]), 1)
    return 2


def _yaml_key(name: str) -> str:
    """`name` as a YAML key that both YAML 1.1 and 1.2 loaders read back as the same string."""
    if _PLAIN_KEY.fullmatch(name) and name.lower() not in _YAML11_WORDS:
        return name
    out = []
    for ch in name:
        if ch in '"\\':
            out.append("\\" + ch)
        elif " " <= ch <= "~" or "\xa0" <= ch <= "\u2027" or "\u202a" <= ch <= "\ud7ff" or (
            "\ue000" <= ch <= "\ufefe" or "\uff00" <= ch <= "\ufffd" or ch >= "\U00010000"
        ):
            out.append(ch)
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'
