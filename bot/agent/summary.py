"""The summary guard: a new recursive summary is accepted only if it is usable.

A weak model may answer the summary request with nothing, with a ramble longer than the
budget, or by echoing our prompt (event headers such as ``[user alice, DM, ...]``). Any of
those would replace the previous summary and lose what it held, so it is rejected: the
previous summary stays, followed by one note saying which period left the view unsummarized
(those messages are in recall storage, found with conversation_search_date).
"""

from __future__ import annotations

import re

from bot.messages import Message, stamp

WORD_SLACK = 1.5  # a summary may run this much over its word budget
# our own prompt structure, which a summary must never contain
_ECHO = re.compile(
    r"\[(user|heartbeat|alert|login|memory:|summary of earlier)\b"
    r"|\[\d{4}-\d\d-\d\d \d\d:\d\d\] (user|assistant|tool|system):"
    r"|^\s*(previous summary|messages)\s*:",
    re.IGNORECASE | re.MULTILINE,
)
_NOTE = re.compile(r"\s*\(Messages from (\S+ \S+) to (\S+ \S+) UTC left the view without a "
                   r"summary; find them with conversation_search_date\.\)$")


def check_summary(text: str, words: int) -> str | None:
    """Why this summary is unusable, or None when it may replace the previous one."""
    body = text.strip()
    if not body:
        return "empty"
    n = len(body.split())
    if n > words * WORD_SLACK:
        return f"{n} words, over the budget of {words}"
    if _ECHO.search(body):
        return "it echoes the prompt's event headers"
    return None


def unsummarized_note(previous: str, evicted: list[Message]) -> str:
    """The previous summary, with one note covering the evicted period (merged with an
    earlier note, so repeated rejections do not grow the summary)."""
    if not evicted:
        return previous
    start, end = stamp(evicted[0].ts), stamp(evicted[-1].ts)
    found = _NOTE.search(previous)
    if found:
        start = found.group(1)
        previous = previous[: found.start()]
    note = (f"(Messages from {start} to {end} UTC left the view without a summary; "
            "find them with conversation_search_date.)")
    return f"{previous.strip()} {note}".strip()
