"""Dates outside the calendar in a query are not dates: no exception reaches the caller."""

from __future__ import annotations

import pytest

from bot.memory.timeparse import find, parse_date

NOW = 1_715_774_400.0  # 2024-05-15 12:00 UTC


@pytest.mark.parametrize("query", ["1000000 days ago", "what did I say 99999999 weeks ago",
                                   "5000 years ago", "999999999 months ago",
                                   "past 99999999 days", "the last 10000000 years"])
def test_huge_relative_dates_are_ignored(query: str) -> None:
    """"1000000 days ago" (OverflowError in datetime) is no date; the words stay in the query."""
    when, rest = find(query, NOW)
    assert when is None
    assert rest == query.lower() or rest == query


@pytest.mark.parametrize("arg", ["9999-12", "9999-12-31", "0000-01-01", "9999"])
def test_edge_of_calendar_date_arguments(arg: str) -> None:
    """Strict date arguments at the calendar's edge are a range or None, never an exception."""
    got = parse_date(arg)
    assert got is None or got.since < got.until


def test_normal_relative_dates_still_work() -> None:
    """The guard does not swallow ordinary dates."""
    when, rest = find("two days ago pizza", NOW)
    assert when is not None and rest == "pizza"
