"""What environment files say about each other, checked once every file has loaded on its
own: one file per environment name, one target per registry, a version in one stage, a
name either a model or a prompt, and `promotion.from` naming an environment that exists,
without a cycle. Pure."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping

from mlflow_gitops.core.diagnostics import Diagnostic
from mlflow_gitops.core.model import Environment, Target


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

