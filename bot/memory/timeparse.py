"""Dates and relative dates in a search query, resolved against ``now`` (UTC).

``find(query, now)`` returns the time range the query names (or None) and the query with
those words taken out. It knows what people type when they search a chat history:

- absolute: ``2023-05-08``, ``May 8, 2023``, ``8 May 2023``, ``May 8`` (the last one not
  after ``now``), ``May 2023``, ``2023-05``, ``in May``, ``in 2023``;
- relative: ``today``, ``yesterday``, ``last night``, ``two days ago``, ``3 weeks ago``,
  ``last week`` / ``this week`` (calendar weeks from Monday), ``last month``, ``last year``,
  ``past 3 days``, ``last weekend``, ``on Monday``, ``last summer``, ``recently``;
- spans: ``since May``, ``between May 1 and May 5``, ``from 2023-05-01 to 2023-05-03``.

Several expressions give the smallest range covering all. Ranges are half-open
``[since, until)`` in epoch seconds. A bare ``may``/``march`` counts only next to a day,
a year or a preposition ("in May"), so "may I ask" is not a date; nor are the other
month names that are first names (April, June, August) or abbreviations, when alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

DAY = 86_400.0
_MONTHS = {m: i for i, m in enumerate(
    "january february march april may june july august september october november december".split(), 1)}
_MONTHS |= {m[:3]: i for m, i in list(_MONTHS.items())} | {"sept": 9}
_MON = r"(january|february|march|april|may|june|july|august|september|october|november|december" \
       r"|jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec)\.?"
_DD = r"(\d{1,2})(?:st|nd|rd|th)?"
_YYYY = r"((?:19|20)\d\d)"
_NUM = r"(\d+|an?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|a couple of|a few|few|several)"
_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
          "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
          "a couple of": 2, "a few": 3, "few": 3, "several": 4}
_WEEKDAYS = "monday tuesday wednesday thursday friday saturday sunday".split()
_SEASONS = {"spring": 3, "summer": 6, "fall": 9, "autumn": 9, "winter": 12}
_PREP = r"(?:in|during|since|from|of|by|until|till|before|after|early|mid|late|last|this)"
_OPEN = ("since", "after", "before", "until", "till")
_LINKS = re.compile(r"\b(?:since|after|before|until|till|from|between|and|to|in|on|during)\s*\x00")
_UNIT_DAYS = {"day": 1.0, "week": 7.0, "weekend": 2.0, "month": 30.0}


@dataclass(frozen=True)
class TimeRange:
    since: float
    until: float
    text: str = ""  # the words that named it

    def covers(self, ts: float) -> bool:
        return self.since <= ts < self.until


def find(query: str, now: float) -> tuple[TimeRange | None, str]:
    """The time range named in ``query`` (None if none) and the query without its words."""
    today = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    found: list[tuple[float, float]] = []
    words: list[str] = []
    rest = query.lower()
    for pattern, resolve in _RULES:
        def take(m: re.Match[str], resolve: _Resolver = resolve) -> str:
            try:
                span = resolve(m, today)
            except (OverflowError, ValueError):  # "10000 days ago": outside the calendar
                span = None
            if span is None:
                return m.group(0)
            found.append(_open_ended(span, m, now))
            words.append(m.group(0).strip())
            return "\x00"
        rest = pattern.sub(take, rest)
    if not found:
        return None, query
    since, until = min(s for s, _ in found), max(u for _, u in found)
    rest = _LINKS.sub("\x00", rest).replace("\x00", " ")
    return TimeRange(since, until, " ".join(words)), " ".join(rest.split())


def _open_ended(span: Span, m: re.Match[str], now: float) -> Span:
    """"since/after X" runs from X to now, "before/until X" from the start of time to X."""
    before = m.string[:m.start()].split()
    word = (m.group(0).split() or [""])[0]
    word = word if word in _OPEN else (before[-1] if before else "")
    unit = _UNIT_DAYS.get(before[-2] if len(before) > 1 else "", 0.0) * DAY
    if unit and word in ("before", "after"):  # "the week before X", "a day after X"
        return (span[0] - unit, span[0]) if word == "before" else (span[1], span[1] + unit)
    if word in ("since", "after"):
        return (span[0] if word == "since" else span[1]), max(now, span[1]) + DAY
    if word in ("before", "until", "till"):
        return 0.0, (span[0] if word == "before" else span[1])
    return span


def parse_date(text: str) -> TimeRange | None:
    """A strict date argument: ``YYYY-MM-DD``, ``YYYY-MM`` or ``YYYY`` (None otherwise)."""
    m = re.fullmatch(r"\s*(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?\s*", text)
    if m is None:
        return None
    y, mo, d = int(m[1]), int(m[2] or 0), int(m[3] or 0)
    span = _day(y, mo, d) if d else _month(y, mo) if mo else _year(y)
    return None if span is None else TimeRange(*span, text.strip())


# --- calendar spans -----------------------------------------------------------------------------
Span = tuple[float, float]


def _at(y: int, mo: int, d: int) -> datetime | None:
    try:
        return datetime(y, mo, d, tzinfo=UTC)
    except ValueError:
        return None


def _days(start: datetime, n: float) -> Span:
    return start.timestamp(), start.timestamp() + n * DAY


def _day(y: int, mo: int, d: int) -> Span | None:
    start = _at(y, mo, d)
    return None if start is None else _days(start, 1)


def _month(y: int, mo: int) -> Span | None:
    start = _at(y, mo, 1)
    if start is None:
        return None
    end = _at(y + mo // 12, mo % 12 + 1, 1)
    return None if end is None else (start.timestamp(), end.timestamp())


def _year(y: int) -> Span | None:
    return None if not 1900 <= y <= 2200 else (_at(y, 1, 1).timestamp(),  # type: ignore[union-attr]
                                               _at(y + 1, 1, 1).timestamp())  # type: ignore[union-attr]


def _months_back(today: datetime, n: int) -> Span | None:
    k = today.year * 12 + today.month - 1 - n
    return _month(k // 12, k % 12 + 1)


def _recent_year(today: datetime, mo: int, d: int = 1) -> int:
    """The year of the last ``mo``/``d`` not after today."""
    return today.year if (mo, d) <= (today.month, today.day) else today.year - 1


def _num(text: str) -> int:
    return int(text) if text.isdigit() else _WORDS[text]


# --- rules: (pattern, resolver) in order; earlier rules consume their words first --------------
_Resolver = Callable[[re.Match[str], datetime], "Span | None"]


def _iso(m: re.Match[str], today: datetime) -> Span | None:
    return _day(int(m[1]), int(m[2]), int(m[3]))


def _iso_month(m: re.Match[str], today: datetime) -> Span | None:
    return _month(int(m[1]), int(m[2]))


def _mdy(m: re.Match[str], today: datetime) -> Span | None:
    return _day(int(m[3]), _MONTHS[m[1]], int(m[2]))


def _dmy(m: re.Match[str], today: datetime) -> Span | None:
    return _day(int(m[3]), _MONTHS[m[2]], int(m[1]))


def _md(m: re.Match[str], today: datetime) -> Span | None:
    mo, d = _MONTHS[m[1]], int(m[2])
    return _day(_recent_year(today, mo, d), mo, d)


def _dm(m: re.Match[str], today: datetime) -> Span | None:
    d, mo = int(m[1]), _MONTHS[m[2]]
    return _day(_recent_year(today, mo, d), mo, d)


def _my(m: re.Match[str], today: datetime) -> Span | None:
    return _month(int(m[2]), _MONTHS[m[1]])


def _month_only(m: re.Match[str], today: datetime) -> Span | None:
    mo = _MONTHS[m[1]]
    return _month(_recent_year(today, mo), mo)


def _year_only(m: re.Match[str], today: datetime) -> Span | None:
    return _year(int(m[1]))


def _ago(m: re.Match[str], today: datetime) -> Span | None:
    n, unit = _num(m[1]), m[2]
    if unit == "day":
        return _days(today - timedelta(days=n), 1)
    if unit == "week":
        return _days(today - timedelta(days=7 * n + 3), 7)
    if unit == "month":
        return _months_back(today, n)
    return _year(today.year - n)


def _past(m: re.Match[str], today: datetime) -> Span | None:
    n, unit = _num(m[1]) if m[1] else 1, m[2]
    days = {"day": 1, "week": 7, "month": 30, "year": 365}[unit] * n
    return _days(today - timedelta(days=days), days + 1)


def _named_day(m: re.Match[str], today: datetime) -> Span | None:
    back = {"today": 0, "tonight": 0, "this morning": 0, "this afternoon": 0,
            "this evening": 0, "yesterday": 1, "last night": 1, "day before yesterday": 2}
    return _days(today - timedelta(days=back[m[1]]), 1)


def _this_last(m: re.Match[str], today: datetime) -> Span | None:
    back, unit = (1 if m[1] in ("last", "previous") else 0), m[2]
    if unit == "week":
        return _days(today - timedelta(days=today.weekday() + 7 * back), 7)
    if unit == "weekend":
        sat = today - timedelta(days=(today.weekday() - 5) % 7 + (7 if back and today.weekday() >= 5 else 0))
        return _days(sat, 2)
    if unit == "month":
        return _months_back(today, back)
    return _year(today.year - back)


def _weekday(m: re.Match[str], today: datetime) -> Span | None:
    back = (today.weekday() - _WEEKDAYS.index(m[2])) % 7 or 7
    return _days(today - timedelta(days=back), 1)


def _season(m: re.Match[str], today: datetime) -> Span | None:
    first = _SEASONS[m[2]]
    y = today.year if (first, 1) <= (today.month, 1) else today.year - 1
    if m[1] == "last" and (first, 1) <= (today.month, 1) and today.month < first + 3:
        y -= 1  # in the middle of it: "last summer" is the one before
    start = _at(y, first, 1)
    assert start is not None
    end = _months_back(start, -3)
    return None if end is None else (start.timestamp(), end[0])


def _recently(m: re.Match[str], today: datetime) -> Span | None:
    return _days(today - timedelta(days=14), 15)


def _r(pattern: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w-])" + pattern + r"(?![\w-])", re.IGNORECASE)


_RULES: list[tuple[re.Pattern[str], _Resolver]] = [
    (_r(r"(?:on\s+)?" + _YYYY + r"[-/.](\d{1,2})[-/.](\d{1,2})"), _iso),
    (_r(r"(?:on\s+)?" + _MON + r"\s+" + _DD + r",?\s+" + _YYYY), _mdy),
    (_r(r"(?:on\s+)?(?:the\s+)?" + _DD + r"(?:\s+of)?\s+" + _MON + r",?\s+" + _YYYY), _dmy),
    (_r(r"(?:in\s+)?" + _YYYY + r"-(\d{2})"), _iso_month),
    (_r(r"(?:in\s+|during\s+)?" + _MON + r",?\s+" + _YYYY), _my),
    (_r(r"(?:on\s+)?" + _MON + r"\s+" + _DD), _md),
    (_r(r"(?:on\s+)?(?:the\s+)?" + _DD + r"(?:\s+of)?\s+" + _MON), _dm),
    (_r(_NUM + r"\s+(day|week|month|year)s?\s+ago"), _ago),
    (_r(r"(?:in\s+|over\s+|during\s+)?(?:the\s+)?(?:past|last)\s+(\d+|two|three|four|five|six|seven|few)?\s*"
        r"(day|week|month|year)s"), _past),
    (_r(r"(?:in\s+|over\s+|during\s+)?(?:the\s+)?past\s+()(day|week|month|year)"), _past),
    (_r(r"(?:the\s+)?(day before yesterday|today|tonight|this (?:morning|afternoon|evening)"
        r"|yesterday|last night)"), _named_day),
    (_r(r"(this|last|previous)\s+(week|weekend|month|year)"), _this_last),
    (_r(r"(?:on\s+)?(last\s+|this\s+|on\s+)?(" + "|".join(_WEEKDAYS) + r")"), _weekday),
    (_r(r"(?:(?:in|during|over)\s+)?(?:the\s+)?(?<![\w-])(last|this|past|the)\s+(spring|summer|fall|autumn|winter)"),
     _season),
    (_r(r"(?:in|during|over)\s+()(spring|summer|fall|autumn|winter)"), _season),
    (_r(r"(?:in|during|since|from|of|until|before|after)\s+" + _YYYY), _year_only),
    (_r(_PREP + r"\s+" + _MON), _month_only),
    (_r(r"(january|february|july|september|october|november|december)"), _month_only),
    (_r(r"(recently|lately|these days)"), _recently),
]
