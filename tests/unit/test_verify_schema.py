"""`verify:` blocks: what validates, what is an error with its line, and the PromQL and JSON
path helpers checks rely on."""

from __future__ import annotations

import pytest
from mlflow_gitops.adapters.config import _validated
from mlflow_gitops.core.errors import ConfigError
from mlflow_gitops.desired import jsonpath, promql
from mlflow_gitops.desired.loader import load_texts

HEAD = "apiVersion: mlflow-gitops/v1\nkind: Environment\ntarget: {stage: Production}\n"
SOURCES = {"monitoring": "prometheus", "quality": "http", "scores": "http+path"}


def _env(verify: str) -> str:
    return HEAD + verify + "models:\n  fraud: 3\n"


def _problems(verify: str, sources: dict[str, str] | None = SOURCES) -> list[tuple[int, str]]:
    state, found = load_texts({"production.yaml": _env(verify)}, known_sources=sources)
    assert (state is None) == bool(found)
    return [(d.line, d.message) for d in found]


GOOD = """verify:
  duration: 6s
  interval: 1s
  failure_limit: 1
  on_failure: hold
  checks:
    - source: monitoring
      query: 'sum(rate(errors_total{model="{model}",version="{version}"}[1m]))'
      max: 0.02
    - source: quality
      path: $.results[0].error_rate
      min: 0
"""


def test_a_valid_verify_block_becomes_values_with_lines() -> None:
    """Durations become seconds and each check keeps the line it was written on."""
    state, found = load_texts({"production.yaml": _env(GOOD)}, known_sources=SOURCES)
    assert found == [] and state is not None
    verify = state.environments[0].verify
    assert verify is not None
    assert (verify.duration_seconds, verify.interval_seconds, verify.failure_limit,
            verify.on_failure) == (6, 1, 1, "hold")
    assert [(c.source, c.line) for c in verify.checks] == [("monitoring", 10), ("quality", 13)]


def test_a_url_in_place_of_a_source_name_is_refused_with_its_line() -> None:
    """A pull request cannot point a check at a server of its choosing."""
    found = _problems(GOOD.replace("source: monitoring", "source: http://always-yes:9090"))
    assert found[0][0] == 10 and "looks like a URL" in found[0][1]


def test_an_unknown_source_names_the_known_ones() -> None:
    """A check naming a source the config does not define is an error at its line."""
    found = _problems(GOOD.replace("source: monitoring", "source: monitorng"))
    assert found == [(10, "verify check names source 'monitorng', which the controller "
                          "config does not define; did you mean 'monitoring'? "
                          "(verification_sources: monitoring, quality, scores)")]


def test_without_a_config_sources_are_not_checked() -> None:
    """Offline validation without --config checks the file alone."""
    assert _problems(GOOD.replace("source: monitoring", "source: elsewhere"), None) == []


@pytest.mark.parametrize(("change", "words"), [
    (("duration: 6s", "duration: 6 seconds"), "is not a duration"),
    (("duration: 6s", "duration: 0s"), "is not a duration"),
    (("duration: 6s", "duration: 99999999999w"), "longer than 30d"),
    (("interval: 1s", "interval: 1m"), "is longer than duration"),
    (("failure_limit: 1", "failure_limit: -1"), "greater than or equal to 0"),
    (("on_failure: hold", "on_failure: revert"), "'rollback' or 'hold'"),
    (("[1m]))'", "[1m])'"), "is never closed"),
    (("[1m]))'", "[1m])))'"), "closes nothing"),
    (('version="{version}"', 'version="{version}'), "never closed"),
    (('version="{version}"', 'version="{versoin}"'), "unknown placeholder {versoin}"),
    (('version="{version}"', "version={version}"), "must stand inside a quoted label value"),
    (('version="{version}"', "version=`{version}`"), "raw `string`"),
    (("      max: 0.02\n", ""), "needs 'min' and/or 'max'"),
    (("      min: 0\n", "      min: 2\n      max: 1\n"), "no value could pass"),
    (("path: $.results[0].error_rate", "path: results.error_rate"), "must start with '$'"),
    (("path: $.results[0].error_rate", "query: up"), "not a PromQL 'query:'"),
    (("      query: 'sum", "      path: $.x\n      xquery: 'sum"), "unknown key"),
])
def test_bad_verify_blocks_are_one_line_each(change: tuple[str, str], words: str) -> None:
    """Each mistake is a diagnostic that says what is wrong, never a traceback."""
    assert change[0] in GOOD
    found = _problems(GOOD.replace(*change))
    assert found and any(words in message for _, message in found), found


def test_a_prometheus_check_needs_a_query_and_an_http_check_a_path() -> None:
    """The kind of source decides what a check must say."""
    assert "needs 'query:'" in _problems(GOOD.replace(
        "query: 'sum(rate(errors_total{model=\"{model}\",version=\"{version}\"}[1m]))'",
        "path: $.x"))[0][1]
    assert "has no json_path" in _problems(GOOD.replace(
        "      path: $.results[0].error_rate\n", ""))[0][1]
    assert _problems(GOOD.replace("source: quality", "source: scores").replace(
        "      path: $.results[0].error_rate\n", "")) == []


def test_require_verified_needs_from() -> None:
    """require_verified without `from` cannot say where the version was verified."""
    state, found = load_texts({"production.yaml": HEAD + "promotion: {require_verified: true}\n"})
    assert state is None and "needs promotion.from" in found[0].message


def test_placeholder_values_are_escaped_for_their_string() -> None:
    """A hostile model name cannot close the string and add PromQL of its own."""
    query = 'sum(x{model="{model}",v=\'{version}\'})'
    rendered = promql.render(query, {"model": 'a"}) or vector(1) #\\', "version": "it's"})
    assert rendered == 'sum(x{model="a\\"}) or vector(1) #\\\\",v=\'it\\\'s\'})'
    assert promql.query_problem(rendered) is None


def test_json_paths_read_one_number() -> None:
    """Members, indexes and quoted keys; anything else is no number."""
    doc = {"a": {"b.c": [1, {"d": "0.5"}]}, "t": True}
    assert jsonpath.number_at(doc, '$.a["b.c"][1].d') == 0.5
    assert jsonpath.number_at(doc, '$.a["b.c"][0]') == 1.0
    assert jsonpath.number_at(doc, "$.a.x") is None
    assert jsonpath.number_at(doc, "$.t") is None
    assert jsonpath.problem("$.a[*]") is not None


CONFIG = """verification_sources:
  monitoring:
    prometheus: http://prometheus:9090
    token_file: /var/run/secrets/prom-token
  quality:
    http: https://quality.internal/api/{model}/{version}
    json_path: $.error_rate
"""


def test_the_config_names_sources_and_their_kinds() -> None:
    """verification_sources: Prometheus servers and HTTP JSON endpoints, by name."""
    config = _validated("config.yaml", CONFIG)
    assert config.source_kinds() == {"monitoring": "prometheus", "quality": "http+path"}


@pytest.mark.parametrize(("bad", "line", "words"), [
    (CONFIG.replace("prometheus: http://prometheus:9090", "prometheus: ftp://p"), 2,
     "not an http(s) URL"),
    (CONFIG.replace("http://prometheus:9090", "http://u:pw@prometheus:9090"), 2,
     "carries credentials"),
    (CONFIG.replace("{version}", "{version}?access_token=abc"), 5, "credential in its query"),
    (CONFIG.replace("    json_path: $.error_rate\n", "    prometheus: http://x\n"), 5,
     "exactly one of prometheus"),
    (CONFIG.replace("  quality:", "  http://q:"), 1, "the URL goes under it"),
])
def test_bad_sources_are_config_errors_with_a_line(bad: str, line: int, words: str) -> None:
    """A source's URL must be http(s), carry no credentials, and be exactly one kind."""
    with pytest.raises(ConfigError) as caught:
        _validated("config.yaml", bad)
    assert str(caught.value).startswith(f"config.yaml:{line}:"), str(caught.value)
    assert words in str(caught.value)
    assert "pw@" not in str(caught.value) and "abc" not in str(caught.value)


def test_the_verification_example_validates_against_its_controller_config() -> None:
    """examples/verification: environments with verify: and the config naming their sources."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "examples" / "verification"
    config = _validated("controller.yaml", (root / "controller.yaml").read_text())
    files = {str(p): p.read_text() for p in sorted((root / "environments").glob("*.yaml"))}
    state, found = load_texts(files, known_sources=config.source_kinds())
    assert found == [] and state is not None
    assert all(env.verify is not None for env in state.environments)
