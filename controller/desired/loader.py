"""Environment files → DesiredState plus every diagnostic.

Pure: callers hand in file names and texts (read from a folder or straight from a git
commit), so the same checks run in `validate`, in `plan`, on a pull request and in the
controller."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import PurePosixPath
from typing import Any

from mlflow_gitops.core.diagnostics import Diagnostic
from mlflow_gitops.core.model import (
    DesiredState,
    Environment,
    Gate,
    ModelEntry,
    Promotion,
    Propose,
    SyncOptions,
    Target,
    Window,
    frozen_map,
)
from mlflow_gitops.desired import schema
from mlflow_gitops.desired.verification import source_problems, to_verify
from mlflow_gitops.desired.yamlsource import ParsedYaml, YamlSyntaxError, parse
from pydantic import BaseModel, ValidationError

ENVIRONMENT_SUFFIXES = (".yaml", ".yml")


def is_environment_file(name: str) -> bool:
    return PurePosixPath(name).suffix in ENVIRONMENT_SUFFIXES


def load_texts(
    files: Mapping[str, str],
    commit: str = "local",
    known_registries: Iterable[str] | None = None,
    known_sources: Mapping[str, str] | None = None,
) -> tuple[DesiredState | None, list[Diagnostic]]:
    """Validate every file and the files together; the state is None when anything is wrong.
    `known_sources` (verification source name → kind, from the controller config) checks
    what each `verify:` check names; None leaves that to the controller."""
    own: list[Diagnostic] = []
    environments: list[Environment] = []
    broken: dict[str, str] = {}  # environment name → its file, for files that did not load
    for path in sorted(files):
        env, found = load_one(path, files[path])
        own.extend(found)
        if env is not None:
            environments.append(env)
        else:
            broken[PurePosixPath(path).stem] = path
    # A file's own errors come first: they are the cause; what the files say about each
    # other follows, and names a broken file as the cause rather than as missing.
    together = cross_file_problems(environments, known_registries, broken)
    if known_sources is not None:
        together.extend(source_problems(environments, known_sources))
    diagnostics = sorted(set(own)) + sorted(set(together) - set(own))
    if diagnostics:
        return None, diagnostics
    return DesiredState(environments=tuple(environments), commit=commit), []


def load_one(path: str, text: str) -> tuple[Environment | None, list[Diagnostic]]:
    """One file → its Environment, or the diagnostics that say why not. Never raises: this is
    the one boundary where any failure to read a file (a value the YAML constructor refuses,
    a nesting or size limit, a bug) becomes a diagnostic with a line, so the commit counts
    as invalid instead of stopping the caller."""
    try:
        env, found = _load_one(path, text)
        return env, [replace(d, message=_capped(d.message)) for d in found]
    except YamlSyntaxError as exc:
        return None, [Diagnostic(path, exc.line, str(exc))]
    except RecursionError:
        return None, [Diagnostic(path, 1, "nesting too deep: simplify the file")]
    except Exception as exc:  # noqa: BLE001 - whatever raised it, it is this file's problem
        detail = " ".join(str(exc).split())[:200]
        return None, [Diagnostic(path, 1, f"cannot read this file ({type(exc).__name__}: "
                                          f"{detail}); fix its content")]


def _load_one(path: str, text: str) -> tuple[Environment | None, list[Diagnostic]]:
    parsed = parse(text)
    found = [Diagnostic(path, line, msg) for line, msg in parsed.duplicates]
    if parsed.data is None:
        found.append(Diagnostic(path, 1, "file is empty: expected an Environment document"))
        return None, found
    if not isinstance(parsed.data, dict):
        found.append(Diagnostic(path, 1, "expected a mapping with apiVersion, kind, target"))
        return None, found
    stem = PurePosixPath(path).stem
    name = parsed.data.get("name")
    if (problem := schema.environment_name_problem(stem)) is not None:
        found.append(Diagnostic(path, parsed.line_of(("name",)) if "name" in parsed.data
                                else 1, problem))
    if isinstance(name, str) and name != stem:
        found.append(
            Diagnostic(
                path,
                parsed.line_of(("name",)),
                f"name '{name}' does not match the file name '{stem}': "
                f"rename the file or set name: {stem}",
            )
        )
    flagged = _version_problems(path, parsed)
    found.extend(flagged.values())
    try:
        spec = schema.EnvironmentSpec.model_validate(parsed.data)
    except ValidationError as exc:
        found.extend(d for loc, d in _translate(path, parsed, exc) if loc not in flagged)
        return None, found
    found.extend(_prompt_problems(path, spec, parsed))
    if found:
        return None, found
    return _to_environment(path, stem, spec, parsed), []


def _prompt_problems(path: str, spec: schema.EnvironmentSpec, parsed: ParsedYaml
                     ) -> list[Diagnostic]:
    """Prompts have no stages, and one name is either a model or a prompt, never both."""
    if not spec.prompts:
        return []
    found = []
    if spec.target.stage is not None:
        found.append(Diagnostic(
            path, parsed.line_of(("prompts",)),
            "prompts: a stage environment cannot list prompts (MLflow prompts have no "
            "stages, only aliases): move them to an environment whose target is an alias"))
    for name in sorted(set(spec.prompts) & set(spec.models)):
        found.append(Diagnostic(
            path, parsed.line_of(("prompts", name)),
            f"'{name}' is listed under both models: and prompts: (also line "
            f"{parsed.line_of(('models', name))}); a registry name is one or the other"))
    return found


def _capped(message: str, limit: int = 500) -> str:
    return message if len(message) <= limit else message[:limit - 1] + "…"


_PLAIN_VERSION = re.compile(r"-?(?:0|[1-9][0-9]*)")  # the schema checks the range


def _version_problems(path: str, parsed: ParsedYaml) -> dict[tuple[Any, ...], Diagnostic]:
    """Versions written as anything but plain decimal digits, keyed by pydantic's location.

    YAML tools disagree on `010` (1.1: octal 8, 1.2: 10), `1:00` (1.1: 60) or `0x1F`; a
    version that two readers of the same file would see differently is an error."""
    out: dict[tuple[Any, ...], Diagnostic] = {}
    for section in ("models", "prompts"):
        entries = parsed.data.get(section)
        if isinstance(entries, dict):
            out.update(_section_version_problems(path, parsed, section, entries))
    return out


def _section_version_problems(path: str, parsed: ParsedYaml, section: str,
                              entries: dict[Any, Any]) -> dict[tuple[Any, ...], Diagnostic]:
    out: dict[tuple[Any, ...], Diagnostic] = {}
    for name, value in entries.items():
        long_form = isinstance(value, dict)
        where = (section, name, "version") if long_form else (section, name)
        text = parsed.plain.get(where)
        if text is None or _PLAIN_VERSION.fullmatch(text) or not any(c.isdigit() for c in text):
            continue  # quoted, plain digits, or not a number at all (the schema says why)
        out[(section, name, "version")] = Diagnostic(
            path, parsed.line_of(where),
            f"{name}: version must be plain decimal digits (e.g. 12), got {text[:40]!r}"
            f"{_version_fix(text)}")
    return out


def _version_fix(text: str) -> str:
    body = text.lstrip("+")
    digits = body.replace("_", "")
    if digits.isdigit() and int(digits) > 0 and len(digits) <= 19:
        why = ("leading zeros (YAML 1.1 tools read them as octal)" if body.startswith("0")
               else "a '+' sign" if text.startswith("+") else "'_' separators")
        return f": {why}; write {int(digits)}"
    if re.fullmatch(r"[0-9]+\.0*", body) and int(body.split(".")[0]) > 0:
        return f": a decimal point; write {int(body.split('.')[0])}"
    if body[:2] in ("0x", "0o"):
        return ": a hexadecimal or octal number; write the version in decimal"
    if ":" in body:
        return ": YAML 1.1 tools read 1:00 as a base-60 number (60); write the version number"
    return "; write the version number, e.g. 12"


def _to_environment(
    path: str, stem: str, spec: schema.EnvironmentSpec, parsed: ParsedYaml
) -> Environment:
    target = (
        Target("stage", spec.target.stage)
        if spec.target.stage is not None
        else Target("alias", spec.target.alias or "")
    )
    promotion = None
    if spec.promotion is not None:
        p = spec.promotion
        promotion = Promotion(
            from_env=p.from_,
            min_soak_seconds=schema.parse_duration(p.min_soak) if p.min_soak else None,
            gates=tuple(
                Gate(
                    metric=g.metric,
                    min=g.min,
                    max=g.max,
                    tag=g.tag,
                    equals=g.equals,
                    exists=g.exists,
                    line=parsed.line_of(("promotion", "gates", i)),
                )
                for i, g in enumerate(p.gates)
            ),
            line=parsed.line_of(("promotion",)),
            windows=tuple(
                Window(
                    kind="allow" if w.allow is not None else "deny",
                    cron=w.allow if w.allow is not None else w.deny or "",
                    duration_seconds=schema.parse_duration(w.duration) or 0,
                    timezone=w.timezone,
                    line=parsed.line_of(("promotion", "windows", i)),
                )
                for i, w in enumerate(p.windows)
            ),
            require_verified=p.require_verified,
        )
    propose = None
    if spec.propose is not None:
        when = spec.propose.when
        propose = Propose(
            tags=frozen_map(when.tags),
            metrics=tuple(
                Gate(metric=g.metric, min=g.min, max=g.max,
                     line=parsed.line_of(("propose", "when", "metrics", i)))
                for i, g in enumerate(when.metrics)),
            line=parsed.line_of(("propose",)),
        )
    models = {
        name: ModelEntry(
            version=m.version,
            line=parsed.line_of(("models", name)),
            registered_name=m.model_name,
        )
        for name, m in spec.models.items()
    }
    models.update({
        name: ModelEntry(version=p.version, line=parsed.line_of(("prompts", name)),
                         kind="prompt")
        for name, p in spec.prompts.items()
        if name not in models
    })
    return Environment(
        name=stem,
        file=path,
        target=target,
        registry=spec.registry,
        sync=SyncOptions(**spec.sync.model_dump()),
        promotion=promotion,
        propose=propose,
        models=frozen_map(models),
        line=parsed.line_of(("target",)),
        verify=to_verify(spec.verify, parsed) if spec.verify is not None else None,
    )


def cross_file_problems(
    environments: list[Environment], known_registries: Iterable[str] | None = None,
    broken: Mapping[str, str] | None = None,
) -> list[Diagnostic]:
    """What the files say about each other. `broken` (environment name → file) are files
    that did not load: a reference to one is a consequence of that file's own error."""
    found: list[Diagnostic] = []
    by_name = {env.name: env for env in environments}
    if len(by_name) != len(environments):
        seen: dict[str, Environment] = {}
        for env in environments:
            if env.name in seen:
                found.append(
                    Diagnostic(
                        env.file,
                        1,
                        f"environment '{env.name}' is also defined in {seen[env.name].file}; "
                        "keep one file per environment",
                    )
                )
            seen[env.name] = env
    known = set(known_registries) if known_registries is not None else None
    targets: dict[tuple[str, Target], Environment] = {}
    for env in environments:
        if known is not None and env.registry not in known:
            found.append(
                Diagnostic(
                    env.file,
                    env.line,
                    f"registry '{env.registry}' is not in the controller config "
                    f"(known: {', '.join(sorted(known)) or 'none'})",
                )
            )
        key = (env.registry, env.target)
        if key in targets:
            other = targets[key]
            found.append(
                Diagnostic(
                    env.file,
                    env.line,
                    f"environment '{env.name}' has the same target ({env.target}) on registry "
                    f"'{env.registry}' as {other.file}:{other.line}; "
                    "each environment needs its own stage or alias",
                )
            )
        else:
            targets[key] = env
    found.extend(_one_stage_per_version(environments))
    found.extend(_one_kind_per_name(environments))
    found.extend(_promotion_sources(environments, by_name, broken or {}))
    return found


def _one_stage_per_version(environments: list[Environment]) -> list[Diagnostic]:
    found = []
    holder: dict[tuple[str, str, int], Environment] = {}
    for env in environments:
        if env.target.kind != "stage":
            continue
        for model, entry in env.models.items():
            key = (env.registry, model, entry.version)
            other = holder.get(key)
            if other is not None and other.target != env.target:
                found.append(
                    Diagnostic(
                        env.file,
                        entry.line,
                        f"{model} v{entry.version} is also assigned to stage "
                        f"{other.target.value} in {other.file}:{other.model_line(model)}; "
                        "a version holds one stage, so assign it in one stage environment",
                    )
                )
            holder.setdefault(key, env)
    return found


def _one_kind_per_name(environments: list[Environment]) -> list[Diagnostic]:
    """A registry name listed under `prompts:` in one file and `models:` in another."""
    found = []
    first: dict[tuple[str, str], Environment] = {}
    for env in environments:
        for name, entry in env.models.items():
            other = first.setdefault((env.registry, name), env)
            theirs = other.models[name]
            if theirs.kind != entry.kind:
                found.append(Diagnostic(
                    env.file, entry.line,
                    f"'{name}' is listed under {entry.kind}s: here but under {theirs.kind}s: "
                    f"in {other.file}:{theirs.line}; a registry name is one or the other"))
    return found


def _promotion_sources(
    environments: list[Environment], by_name: dict[str, Environment],
    broken: Mapping[str, str],
) -> list[Diagnostic]:
    found = []
    for env in environments:
        source = env.promotion.from_env if env.promotion else None
        if source is None:
            continue
        if source not in by_name and source in broken:
            found.append(Diagnostic(
                env.file, env.promotion.line if env.promotion else env.line,
                f"promotion.from names environment '{source}', whose file {broken[source]} "
                "could not be read (a consequence of its error above: fix that file first)"))
            continue
        if source not in by_name:
            hint = difflib.get_close_matches(source, list(by_name), n=1)
            found.append(
                Diagnostic(
                    env.file,
                    env.promotion.line if env.promotion else env.line,
                    f"promotion.from names environment '{source}', which does not exist"
                    + (f"; did you mean '{hint[0]}'?" if hint else "")
                    + f" (environments: {', '.join(sorted(by_name))})",
                )
            )
            continue
        chain = [env.name]
        current: str | None = source
        while current is not None and current in by_name:
            if current in chain:
                cycle = " → ".join(chain[chain.index(current) :] + [current])
                if current == env.name:
                    found.append(
                        Diagnostic(
                            env.file,
                            env.promotion.line if env.promotion else env.line,
                            f"promotion.from forms a cycle ({cycle}); "
                            "one environment in the chain must have no 'from'",
                        )
                    )
                break
            chain.append(current)
            nxt = by_name[current].promotion
            current = nxt.from_env if nxt else None
    return found


# --- pydantic errors → one friendly line each ----------------------------------------------

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


def _translate(path: str, parsed: ParsedYaml, exc: ValidationError
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
