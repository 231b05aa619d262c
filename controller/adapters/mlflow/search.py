"""MLflow search filters for reading only the managed models.

MLflow's filter grammar (mlflow/utils/search_utils.py, SearchModelUtils and
SearchModelVersionUtils): clauses joined by AND only (no OR); `name IN (...)` in both
searches, the list parsed with `ast.literal_eval`, so each name is written as a Python
string literal; a single `name = '...'` value is only stripped of its outer quotes (no
escapes), so it must be quoted with a quote character it does not contain; a tag whose key
has dots is written `tags.\\`key\\``, compared with =, !=, LIKE or ILIKE.

Searches are GET requests with the filter in the query string, so a long list of names is
split into chunks whose encoded filter stays under MAX_FILTER_BYTES (proxies and servers
commonly cap a request line at 8 KB)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Protocol, TypeVar
from urllib.parse import quote_plus

from mlflow_gitops.adapters.mlflow.client import InRefused
from mlflow_gitops.core.errors import InvalidRequest
from mlflow_gitops.core.model import PROMPT_TAG, LiveModel, LiveVersion, Snapshot, frozen_map
from mlflow_gitops.core.tags import ownership_tag

T = TypeVar("T")
log = logging.getLogger(__name__)

MAX_FILTER_BYTES = 6000  # the encoded filter; the rest of the URL stays well under 8 KB
MAX_NAMES = 1000  # search_registered_models returns at most 1,000 models per page


def name_literal(name: str) -> str:
    """`name` as a Python string literal, as MLflow parses an IN list."""
    return repr(name)


def name_in(names: Iterable[str]) -> str:
    return "name IN (" + ", ".join(name_literal(n) for n in names) + ")"


def name_equals(name: str) -> str:
    """`name = '…'`; MLflow strips the outer quotes and unescapes nothing, so the quote
    character must be one the name does not contain."""
    for quote in ("'", '"'):
        if quote not in name and not name.endswith("\\"):
            return f"name = {quote}{name}{quote}"
    raise InvalidRequest(
        f"registered model {name!r} contains both quote characters, which MLflow's search "
        "filter cannot express one model at a time; this registry does not accept "
        "`name IN (...)`: upgrade the server to MLflow 3")


#: MLflow's searches leave prompts out unless the filter asks for them by this tag
#: (mlflow/store/model_registry/sqlalchemy_store.py, `_is_querying_prompt`).
PROMPTS_ONLY = f"tags.`{PROMPT_TAG}` = 'true'"


def prompts(filter_string: str) -> str:
    """`filter_string` over prompts instead of models."""
    return f"{filter_string} AND {PROMPTS_ONLY}"


def tagged(key: str) -> str:
    """Versions that carry tag `key` (any value)."""
    if "`" in key:
        raise InvalidRequest(f"tag key {key!r} cannot be searched (contains a backtick)")
    return f"tags.`{key}` LIKE '%'"


def chunks(names: Iterable[str], budget: int = MAX_FILTER_BYTES,
           most: int = MAX_NAMES) -> Iterator[tuple[str, ...]]:
    """Sorted names in groups whose `name IN (...)` filter, URL-encoded, fits `budget`."""
    group: list[str] = []
    size = len(quote_plus(name_in(())))
    for name in sorted(set(names)):
        cost = len(quote_plus(name_literal(name) + ", "))
        if group and (size + cost > budget or len(group) >= most):
            yield tuple(group)
            group, size = [], len(quote_plus(name_in(())))
        group.append(name)
        size += cost
    if group:
        yield tuple(group)


# -- one snapshot of the managed models, over either kind of store --------------------------

@dataclass(frozen=True)
class Head:
    """A registered model without its versions: name, aliases and model tags."""

    name: str
    aliases: Mapping[str, int]
    tags: Mapping[str, str]


class Searcher(Protocol):
    """The three reads a snapshot needs, one page at a time (REST or an MLflow store)."""

    def models(self, filter_string: str, token: str | None
               ) -> tuple[list[Head], str | None]: ...

    def versions(self, filter_string: str, token: str | None
                 ) -> tuple[list[LiveVersion], str | None]: ...

    def model(self, name: str) -> Head | None:
        """One registered model by name (None when it does not exist)."""
        ...


def _pages(read: Callable[[str | None], tuple[list[T], str | None]]) -> Iterator[T]:
    token: str | None = None
    while True:
        items, token = read(token)
        yield from items
        if not token:
            return


def owned_names(searcher: Searcher, owned_by: Iterable[str]) -> set[str]:
    """Models and prompts with a version tagged by one of these environments (two searches
    each: MLflow's searches return prompts only when asked for them)."""
    return {lv.model for env in sorted(set(owned_by))
            for where in (tagged(ownership_tag(env)), prompts(tagged(ownership_tag(env))))
            for lv in _pages(partial(searcher.versions, where))}


def read_models(registry: str, searcher: Searcher, names: Iterable[str], use_in: bool
                ) -> Snapshot:
    """The named models and prompts that exist, with every version and alias: `name IN`
    chunks, or one at a time where the server refuses IN (`use_in=False`). Models are
    searched first; only the names that search did not find are searched again as prompts,
    so a registry without prompts pays nothing for them, and prompts cost two searches (per
    chunk) in all, never one call per prompt."""
    heads: dict[str, Head] = {}
    versions: dict[str, dict[int, LiveVersion]] = {}
    wanted = sorted(set(names))
    if use_in:
        _read_in(searcher, wanted, heads, versions, lambda f: f)
        rest = [n for n in wanted if n not in heads and n not in versions]
        if rest:
            _read_in(searcher, rest, heads, versions, prompts)
    else:
        for name in wanted:
            found = searcher.model(name)
            if found is None:
                continue
            heads[found.name] = found
            is_prompt = found.tags.get(PROMPT_TAG, "").lower() == "true"
            where = prompts(name_equals(name)) if is_prompt else name_equals(name)
            for lv in _pages(partial(searcher.versions, where)):
                versions.setdefault(lv.model, {})[lv.version] = lv
    models = {}
    for name in sorted((set(heads) | set(versions)) & set(wanted)):
        head = heads.get(name, Head(name, {}, {}))
        models[name] = LiveModel(name=name, versions=frozen_map(versions.get(name, {})),
                                 aliases=frozen_map(head.aliases), tags=frozen_map(head.tags))
    return Snapshot(registry=registry, models=frozen_map(models))


def _read_in(searcher: Searcher, names: list[str], heads: dict[str, Head],
             versions: dict[str, dict[int, LiveVersion]], where: Callable[[str], str]) -> None:
    budget = MAX_FILTER_BYTES - len(quote_plus(where("")))
    for group in chunks(names, budget):
        for head in _pages(partial(searcher.models, where(name_in(group)))):
            heads[head.name] = head
        for lv in _pages(partial(searcher.versions, where(name_in(group)))):
            versions.setdefault(lv.model, {})[lv.version] = lv


def snapshot(registry: str, searcher: Searcher, names: Iterable[str], owned_by: Iterable[str],
             use_in: bool) -> tuple[Snapshot, bool]:
    """The port's snapshot over `searcher`, and whether `name IN` works (False once the
    server refused it: the caller remembers, so the refusal costs one call per process)."""
    wanted = set(names) | owned_names(searcher, owned_by)
    if use_in:
        try:
            return read_models(registry, searcher, wanted, True), True
        except InRefused:
            log.warning("registry '%s' does not accept `name IN (...)` filters (MLflow < 3?); "
                        "reading the managed models one at a time", registry)
    return read_models(registry, searcher, wanted, False), False
