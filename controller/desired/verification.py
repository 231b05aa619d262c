"""`verify:` blocks as values, and the check that each names a source the controller config
defines, of the right kind (a PromQL query for a Prometheus source, a JSON path for an HTTP
source). Pure: the config's sources come in as a name → kind mapping."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from mlflow_gitops.core.diagnostics import Diagnostic
from mlflow_gitops.core.model import Check, Environment, Verify

if TYPE_CHECKING:
    from mlflow_gitops.desired.schema_verify import VerifySpec
    from mlflow_gitops.desired.yamlsource import ParsedYaml

#: Source kinds as the controller config names them.
PROMETHEUS, HTTP = "prometheus", "http"
#: Kind → whether the source's own config gives a default JSON path ("http+path").
HTTP_WITH_PATH = "http+path"


def to_verify(spec: VerifySpec, parsed: ParsedYaml) -> Verify:
    from mlflow_gitops.desired.fields import parse_duration

    return Verify(
        duration_seconds=parse_duration(spec.duration) or 0,
        interval_seconds=parse_duration(spec.interval) or 0,
        failure_limit=spec.failure_limit,
        on_failure=spec.on_failure,
        checks=tuple(Check(source=c.source, query=c.query, path=c.path, min=c.min, max=c.max,
                           line=parsed.line_of(("verify", "checks", i)))
                     for i, c in enumerate(spec.checks)),
        line=parsed.line_of(("verify",)),
    )


def source_problems(environments: Iterable[Environment], sources: Mapping[str, str]
                    ) -> list[Diagnostic]:
    """Each check naming a source the config does not define, or asking it the wrong way."""
    found: list[Diagnostic] = []
    for env in environments:
        for check in env.verify.checks if env.verify is not None else ():
            problem = check_problem(check, sources)
            if problem:
                found.append(Diagnostic(env.file, check.line, problem))
    return found


def check_problem(check: Check, sources: Mapping[str, str]) -> str | None:
    kind = sources.get(check.source)
    if kind is None:
        hint = difflib.get_close_matches(check.source, list(sources), n=1)
        return (f"verify check names source '{check.source}', which the controller config "
                "does not define" + (f"; did you mean '{hint[0]}'?" if hint else "")
                + f" (verification_sources: {', '.join(sorted(sources)) or 'none'})")
    if kind == PROMETHEUS:
        if check.query is None:
            return (f"source '{check.source}' is a Prometheus server: the check needs "
                    "'query:' (an instant PromQL query)")
        return None
    if check.query is not None:
        return (f"source '{check.source}' is an HTTP JSON endpoint: the check takes 'path:' "
                "(a JSON path, e.g. $.error_rate), not a PromQL 'query:'")
    if check.path is None and kind != HTTP_WITH_PATH:
        return (f"source '{check.source}' has no json_path in the controller config: give "
                "the check a 'path:' (e.g. $.error_rate)")
    return None
