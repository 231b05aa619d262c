"""Environment files → DesiredState plus every diagnostic.

Pure: callers hand in file names and texts (read from a folder or straight from a git
commit), so the same checks run in `validate`, in `plan`, on a pull request and in the
controller."""

from __future__ import annotations

import re
import threading
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
from mlflow_gitops.desired.crossfile import cross_file_problems
from mlflow_gitops.desired.fields import environment_name_problem, parse_duration
from mlflow_gitops.desired.schema_errors import translate
from mlflow_gitops.desired.verification import source_problems, to_verify
from mlflow_gitops.desired.yamlsource import ParsedYaml, YamlSyntaxError, parse
from pydantic import ValidationError

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
    as invalid instead of stopping the caller. A file whose text is the same as when it was
    last read is not parsed again (a merge changes one file; the controller reloads them
    all): the result is a function of (path, text) and its values are frozen. One result is
    kept per path (in the controller, the one the desired state in force already holds;
    reading an older revision, as `history` does, replaces it, which costs a parse, never
    a wrong result)."""
    with _LAST_LOCK:
        last = _LAST.get(path)
    if last is not None and last[0] == text:
        return last[1], list(last[2])
    env, found = _load_guarded(path, text)
    with _LAST_LOCK:
        if len(_LAST) >= _LAST_PATHS and path not in _LAST:
            _LAST.clear()
        _LAST[path] = (text, env, tuple(found))
    return env, found


#: path → (text, its Environment, its diagnostics): the last reading of each file.
_LAST: dict[str, tuple[str, Environment | None, tuple[Diagnostic, ...]]] = {}
_LAST_LOCK = threading.Lock()
_LAST_PATHS = 1000


def _load_guarded(path: str, text: str) -> tuple[Environment | None, list[Diagnostic]]:
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
    if (problem := environment_name_problem(stem)) is not None:
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
        found.extend(d for loc, d in translate(path, parsed, exc) if loc not in flagged)
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
            min_soak_seconds=parse_duration(p.min_soak) if p.min_soak else None,
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
                    duration_seconds=parse_duration(w.duration) or 0,
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
