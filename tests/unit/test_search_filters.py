"""The `name IN (...)` filters that read only the managed models (adapters.mlflow.search)."""

from __future__ import annotations

import ast
from urllib.parse import quote_plus

import pytest
from mlflow_gitops.adapters.mlflow.search import chunks, name_equals, name_in, tagged
from mlflow_gitops.core.errors import InvalidRequest

NAMES = [f"model-{i:05d}-{'x' * (i % 40)}" for i in range(3000)] + [
    "it's", 'say "hi"', "both'\"", "back\\slash", "ünïcode ✓", "new\nline"]


def test_chunks_cover_every_name_once_within_the_url_budget() -> None:
    """Every name lands in exactly one chunk, and each chunk's encoded filter fits the budget."""
    groups = list(chunks(NAMES, budget=6000))
    assert sorted(n for g in groups for n in g) == sorted(NAMES)
    assert len(groups) > 1
    assert all(len(quote_plus(name_in(g))) <= 6000 for g in groups)


def test_chunks_respect_the_server_page_of_1000_models() -> None:
    """A chunk never names more models than one page of search_registered_models returns."""
    assert max(len(g) for g in chunks([f"m{i}" for i in range(5000)], budget=10**9)) == 1000


def test_in_list_parses_back_to_the_names_as_mlflow_reads_it() -> None:
    """MLflow parses the IN list with ast.literal_eval: quotes, backslashes and unicode in
    names survive exactly."""
    odd = NAMES[-6:]
    listed = name_in(odd)[len("name IN "):]
    assert list(ast.literal_eval(listed)) == odd


def test_single_name_filter_uses_a_quote_the_name_lacks() -> None:
    """`name = ...` quotes with a character the name does not contain, and refuses a name
    with both (MLflow unescapes nothing there)."""
    assert name_equals("it's") == 'name = "it\'s"'
    assert name_equals('say "hi"') == "name = 'say \"hi\"'"
    with pytest.raises(InvalidRequest, match="both quote characters"):
        name_equals("both'\"")


def test_tag_filter_backticks_the_dotted_key() -> None:
    """The ownership tag search writes the dotted key in backticks, any value."""
    assert tagged("gitops.env.prod") == "tags.`gitops.env.prod` LIKE '%'"
