"""`/status` query strings: filters and a page, or one line saying what is wrong."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from mlflow_gitops.adapters.http import parse_status_query
from mlflow_gitops.loop.views import StatusQuery


def test_filters_and_page_are_read() -> None:
    """Known parameters become a StatusQuery; defaults fill the rest."""
    assert parse_status_query("") == StatusQuery()
    assert parse_status_query("environment=prod&model=a%20b&state=Error&limit=10&offset=20") \
        == StatusQuery("prod", "a b", "Error", 10, 20)


def test_bad_parameters_are_one_line_reasons() -> None:
    """Unknown keys, limits out of range and non-digits are refused, not guessed."""
    for text, words in [("limit=0", "limit must be"), ("limit=²", "limit must be"),
                        ("limit=99999", "limit must be"), ("offset=-1", "offset must be"),
                        ("offset=" + "9" * 5000, "offset must be"), ("x=1", "unknown parameter"),
                        ("&".join(["model=a"] * 50), "too many")]:
        answer = parse_status_query(text)
        assert isinstance(answer, str) and words in answer and "\n" not in answer


@given(st.text(max_size=200))
def test_any_query_string_is_a_query_or_a_reason(text: str) -> None:
    """Whatever the client sends after '?', the parser answers and never raises."""
    assert isinstance(parse_status_query(text), (StatusQuery, str))
