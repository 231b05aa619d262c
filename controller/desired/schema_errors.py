"""Pydantic's validation errors → one line each that a person can act on: the dotted key,
what was expected, the value given (cut short), and for an unknown key the nearest allowed
one. Pure."""

from __future__ import annotations

import difflib
from typing import Any

from mlflow_gitops.core.diagnostics import Diagnostic
from mlflow_gitops.desired import schema
from mlflow_gitops.desired.yamlsource import ParsedYaml
from pydantic import BaseModel, ValidationError

_TYPE_WORDS = {
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "float_type": "a number",
    "bool_type": "true or false",
    "string_type": "a string",
    "dict_type": "a mapping",
    "list_type": "a list",
    "model_type": "a mapping",
}



def translate(path: str, parsed: ParsedYaml, exc: ValidationError
               ) -> list[tuple[tuple[Any, ...], Diagnostic]]:
    out = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        out.append((loc, Diagnostic(path, parsed.line_of(loc), _message(loc, err))))
    return out



def _message(loc: tuple[Any, ...], err: Any) -> str:
    kind = err["type"]
    where = _dotted(loc)
    got = _Shown(err.get("input"))
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        hint = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        suggestion = f"did you mean '{hint[0]}'?" if hint else f"allowed: {', '.join(allowed)}"
        return f"unknown key '{where}': {suggestion}"
    if kind == "missing":
        return f"missing required key '{where}'"
    if loc[-1:] == ("version",) and loc[:1] in (("models",), ("prompts",)):
        if isinstance(got.value, str) and got.value.strip().isdigit():
            return f"{loc[1]}: version must be a number, not the quoted string {got!r}: " \
                "remove the quotes"
        return (
            f"{loc[1]}: version must be a positive whole number (e.g. 3), got {got!r}"
        )
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        return f"{where} must be {expected}, got {got!r}"
    if kind in _TYPE_WORDS:
        return f"{where} must be {_TYPE_WORDS[kind]}, got {got!r}"
    if kind == "value_error":
        message = str(err["msg"]).removeprefix("Value error, ")
        return f"{where}: {message}" if where else message
    return f"{where}: {err['msg']}"


class _Shown:
    """A user's value in a message: its repr, cut short (a value may be megabytes long)."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        text = repr(self.value)
        return text if len(text) <= 60 else text[:57] + "…"


def _dotted(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p)[:60] if not isinstance(p, int) else f"[{p}]" for p in loc).replace(
        ".[", "["
    )


def _allowed_keys(parent: tuple[Any, ...]) -> list[str]:
    model: Any = schema.EnvironmentSpec
    for part in parent:
        if isinstance(part, int):
            continue
        if model is schema.EnvironmentSpec and part in ("models", "prompts"):
            model = part
            continue
        if model in ("models", "prompts"):
            model = schema.ModelSpec if model == "models" else schema.PromptSpec
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return []
        field = next(
            (f for n, f in model.model_fields.items() if (f.alias or n) == part), None
        )
        if field is None:
            return []
        model = _inner_model(field.annotation)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return [f.alias or n for n, f in model.model_fields.items()]
    return []


def _inner_model(annotation: Any) -> Any:
    for candidate in getattr(annotation, "__args__", ()) or (annotation,):
        inner = _inner_model(candidate) if getattr(candidate, "__args__", None) else candidate
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            return inner
    return annotation

