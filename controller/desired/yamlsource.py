"""YAML text → plain data plus the line of every key, so schema errors can name a line.

PyYAML builds nodes that carry marks; we walk the node tree once for lines and duplicate
keys, then construct plain Python data from the same nodes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from mlflow_gitops.core.errors import InputError as YamlSyntaxError

__all__ = ["ParsedYaml", "YamlSyntaxError", "parse"]

Path = tuple[Any, ...]

# libyaml's loader when PyYAML was built with it: the same nodes and marks for valid YAML,
# about four times faster on a 1,000-model file (BENCHMARKS.md).
_FAST = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class ParsedYaml:
    data: Any
    lines: dict[Path, int] = field(default_factory=dict)
    duplicates: list[tuple[int, str]] = field(default_factory=list)  # (line, message)

    def line_of(self, path: Path) -> int:
        """Line of the deepest known prefix of `path` (1-based)."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return 1


def parse(text: str) -> ParsedYaml:
    try:
        return _parse(text, _FAST)
    except YamlSyntaxError:
        if _FAST is yaml.SafeLoader:
            raise
        # libyaml words and places some errors differently: report the pure-Python
        # parser's message and line, as the tests and the docs show them.
        return _parse(text, yaml.SafeLoader)


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
        if node is None:
            return ParsedYaml(data=None, lines={(): 1})
        parsed = ParsedYaml(data=None)
        _walk(node, (), parsed, set())
        try:
            parsed.data = loader.construct_document(node)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise YamlSyntaxError(mark.line + 1 if mark else 1, f"invalid YAML: {exc}") from None
        return parsed
    finally:
        loader.dispose()


def _walk(node: yaml.Node, path: Path, parsed: ParsedYaml, seen_nodes: set[int]) -> None:
    # An alias makes the composer hand out the same node twice; a self-referencing anchor
    # would recurse forever and an "alias bomb" would expand exponentially. Environment
    # files have no use for either, so the first reuse is an error.
    if id(node) in seen_nodes:
        raise YamlSyntaxError(node.start_mark.line + 1,
                              "YAML anchors and aliases (&name / *name) are not supported in "
                              "environment files; write the value out")
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
        seen_nodes.add(id(node))
    parsed.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else repr(key_node)
            line = key_node.start_mark.line + 1
            if key in seen:
                parsed.duplicates.append(
                    (line, f"duplicate key '{key}' (first at line {seen[key]}); keep only one")
                )
                continue
            seen[key] = line
            parsed.lines[path + (key,)] = line
            _walk(value_node, path + (key,), parsed, seen_nodes)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            parsed.lines[path + (index,)] = item.start_mark.line + 1
            _walk(item, path + (index,), parsed, seen_nodes)
