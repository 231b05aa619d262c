"""YAML text → plain data plus the line of every key, so schema errors can name a line.

PyYAML builds nodes that carry marks; we walk the node tree once for lines and duplicate
keys, then construct plain Python data from the same nodes.

Values are read with YAML 1.2 core-schema semantics, as editors using the YAML language
server read them, not PyYAML's YAML 1.1 defaults: `010` is 10 (not octal 8), `1:00` and
`1_0` are strings (not 60 and 10), `yes`/`no`/`on`/`off` are strings, and a date is a
string (no timestamp type). Merge keys (`<<`) and anchors/aliases are refused.

Limits (a hostile commit must not cost more than a diagnostic): a file of at most
MAX_BYTES, nesting at most MAX_DEPTH mappings/lists deep, integers of at most MAX_DIGITS
digits. Every failure, whatever raised it while reading, is an InputError with a line."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from mlflow_gitops.core.errors import InputError as YamlSyntaxError

__all__ = ["MAX_BYTES", "MAX_DEPTH", "MAX_DIGITS", "ParsedYaml", "YamlSyntaxError", "parse"]

Path = tuple[Any, ...]

MAX_BYTES = 16 * 1024 * 1024  # a 100,000-model file is about 3 MB
MAX_DEPTH = 32  # the format itself needs 4 (promotion → gates → [i] → min)
MAX_DIGITS = 100  # below Python's 4,300-digit int() limit and any real value

_MERGE_TAG = "tag:yaml.org,2002:merge"
_INT_TAG = "tag:yaml.org,2002:int"
_DIGITS = re.compile(r"[0-9]+")
_HEX = re.compile(r"[0-9a-fA-F]+")
_OCT = re.compile(r"[0-7]+")

# YAML 1.2 core schema (https://yaml.org/spec/1.2.2/#1032-tag-resolution): the only plain
# scalars that are not strings. Order matters where two match (an int is also a float).
_CORE_RESOLVERS: list[tuple[str, re.Pattern[str], list[str]]] = [
    ("tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")),
    (_INT_TAG, re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")),
    ("tag:yaml.org,2002:float", re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"), list("-+0123456789.")),
]


def _construct_int(loader: Any, node: yaml.ScalarNode) -> int:
    """YAML 1.2 integers: decimal, 0o octal, 0x hex; nothing else (no 1.1 `010` octal,
    `1:00` sexagesimal or `1_0` separators, even behind an explicit `!!int`)."""
    text = str(loader.construct_scalar(node))
    body = text[1:] if text[:1] in "+-" else text
    sign = -1 if text.startswith("-") else 1
    if len(body) > MAX_DIGITS:
        raise ValueError(f"a number of {len(body)} digits is too long (at most {MAX_DIGITS})")
    if body.startswith("0x") and _HEX.fullmatch(body[2:]) and sign == 1:
        return int(body[2:], 16)
    if body.startswith("0o") and _OCT.fullmatch(body[2:]) and sign == 1:
        return int(body[2:], 8)
    if _DIGITS.fullmatch(body):
        return sign * int(body, 10)
    raise ValueError(f"{text[:40]!r} is not a whole number")


class _Located(Exception):
    """A constructor failure with the line of the node that raised it."""

    def __init__(self, line: int, cause: BaseException):
        super().__init__(str(cause))
        self.line = line
        self.cause = cause


def _construct_object(self: Any, node: yaml.Node, deep: bool = False) -> Any:
    try:
        return self._base_construct_object(node, deep)
    except _Located:
        raise
    except Exception as exc:  # noqa: BLE001 - the constructor's failures become a line
        raise _Located(node.start_mark.line + 1, exc) from None


def _yaml12(base: Any) -> Any:
    """A loader class reading YAML 1.2 core-schema values, on `base`'s parser."""
    cls: Any = type(f"Yaml12{base.__name__}", (base,), {
        "yaml_implicit_resolvers": {},
        "_base_construct_object": base.construct_object,
        "construct_object": _construct_object,
    })
    for tag, pattern, first in _CORE_RESOLVERS:
        cls.add_implicit_resolver(tag, pattern, first)
    cls.add_constructor(_INT_TAG, _construct_int)
    return cls


_SLOW = _yaml12(yaml.SafeLoader)
# libyaml's parser when PyYAML was built with it: the same nodes and marks for valid YAML,
# about four times faster on a 1,000-model file (BENCHMARKS.md). The resolver and the
# constructor are Python in both, so both read values the same way.
_FAST = _yaml12(yaml.CSafeLoader) if getattr(yaml, "__with_libyaml__", False) else _SLOW


@dataclass
class ParsedYaml:
    data: Any
    lines: dict[Path, int] = field(default_factory=dict)
    duplicates: list[tuple[int, str]] = field(default_factory=list)  # (line, message)
    plain: dict[Path, str] = field(default_factory=dict)  # unquoted scalars as written

    def line_of(self, path: Path) -> int:
        """Line of the deepest known prefix of `path` (1-based)."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return 1


def parse(text: str) -> ParsedYaml:
    """Parse one document; any failure is a YamlSyntaxError with a line, never another error."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        raise YamlSyntaxError(1, f"file is {size:,} bytes, more than the {MAX_BYTES:,} an "
                                 "environment file may have; split it or remove entries")
    try:
        return _parse(text, _FAST)
    except YamlSyntaxError as exc:
        if _FAST is _SLOW:
            raise
        # libyaml words and places some errors differently: report the pure-Python
        # parser's message and line, as the tests and the docs show them, unless the
        # pure-Python parser itself cannot cope (its composer recurses).
        try:
            return _parse(text, _SLOW)
        except YamlSyntaxError as slow:
            raise slow from None
        except Exception:  # noqa: BLE001 - e.g. RecursionError: keep libyaml's answer
            raise exc from None
    except RecursionError:
        raise YamlSyntaxError(1, f"nesting too deep: at most {MAX_DEPTH} levels of mappings "
                                 "and lists") from None


def _parse(text: str, loader_class: Any) -> ParsedYaml:
    loader = loader_class(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            if exc.context_mark and "stream end" in str(exc.problem):
                mark = exc.context_mark  # unclosed bracket/quote: point at where it opened
            line = mark.line + 1 if mark else 1
            problem = exc.problem or str(exc)
            context = f" {exc.context}" if exc.context else ""
            raise YamlSyntaxError(
                line, f"invalid YAML: {problem}{context}; fix the YAML syntax") from None
        except yaml.YAMLError as exc:
            raise YamlSyntaxError(1, f"invalid YAML: {exc}; fix the YAML syntax") from None
        except (ValueError, UnicodeError) as exc:  # e.g. a NUL or unpaired surrogate
            raise YamlSyntaxError(1, f"invalid YAML: {_short(exc)}; fix the file") from None
        if node is None:
            return ParsedYaml(data=None, lines={(): 1})
        parsed = ParsedYaml(data=None)
        _walk(node, parsed)
        try:
            parsed.data = loader.construct_document(node)
        except _Located as exc:
            raise YamlSyntaxError(exc.line, _construct_message(exc.cause)) from None
        except Exception as exc:  # noqa: BLE001 - anything else the constructor raises
            mark = exc.problem_mark if isinstance(exc, yaml.MarkedYAMLError) else None
            line = (mark or node.start_mark).line + 1
            raise YamlSyntaxError(line, _construct_message(exc)) from None
        return parsed
    finally:
        loader.dispose()


def _construct_message(exc: BaseException) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem:
        return f"invalid YAML: {exc.problem}; fix the value"
    return f"invalid value: {_short(exc)}; fix it, or quote it to make it a string"


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "…"


def _walk(root: yaml.Node, parsed: ParsedYaml) -> None:
    """Record lines, duplicates and plain scalars; refuse what environment files never need.

    Iterative with an explicit depth, so no input can exhaust the Python stack."""
    # An alias makes the composer hand out the same node twice; a self-referencing anchor
    # would recurse forever and an "alias bomb" would expand exponentially. Environment
    # files have no use for either, so the first reuse is an error.
    seen_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, Path, int]] = [(root, (), 0)]
    while stack:
        node, path, depth = stack.pop()
        line = node.start_mark.line + 1
        if id(node) in seen_nodes:
            raise YamlSyntaxError(line, "YAML anchors and aliases (&name / *name) are not "
                                        "supported in environment files; write the value out")
        if depth > MAX_DEPTH:
            raise YamlSyntaxError(line, f"nesting too deep: at most {MAX_DEPTH} levels of "
                                        "mappings and lists")
        parsed.lines.setdefault(path, line)
        if isinstance(node, yaml.ScalarNode):
            if not node.style:  # None (Python parser) or '' (libyaml)
                parsed.plain[path] = node.value
            continue
        seen_nodes.add(id(node))
        children: list[tuple[yaml.Node, Path, int]] = []
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, value_node in node.value:
                key_line = key_node.start_mark.line + 1
                if key_node.tag == _MERGE_TAG or (
                        isinstance(key_node, yaml.ScalarNode) and not key_node.style
                        and key_node.value == "<<"):
                    raise YamlSyntaxError(key_line, "YAML merge keys (<<) are not supported "
                                                    "in environment files; write the entries "
                                                    "out")
                if not isinstance(key_node, yaml.ScalarNode):
                    raise YamlSyntaxError(key_line, "a key must be a plain name, not a "
                                                    "mapping or a list")
                key = key_node.value
                if key in seen:
                    parsed.duplicates.append(
                        (key_line, f"duplicate key '{key}' (first at line {seen[key]}); "
                                   "keep only one"))
                    continue
                seen[key] = key_line
                parsed.lines[path + (key,)] = key_line
                children.append((value_node, path + (key,), depth + 1))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                parsed.lines[path + (index,)] = item.start_mark.line + 1
                children.append((item, path + (index,), depth + 1))
        stack.extend(reversed(children))
