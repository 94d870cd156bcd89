"""What the search tools return to the model: ranked, paged, dated, readable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.errors import ToolError
from bot.longterm import LongTermMemory
from bot.messages import stamp
from bot.protocols import Hit, MemoryItem

_SPEAKER = {"user": "user", "assistant": "you", "tool": "tool", "system": "system"}


def _line(item: MemoryItem) -> str:
    who = item.meta.get("name") or _SPEAKER.get(item.role, item.role or "note")
    text = " ".join(item.text.split())
    return f"[{stamp(item.ts)}] {who}: {text}"


def _page(page: object) -> int:
    if not isinstance(page, int) or page < 0:
        raise ToolError("page must be a whole number from 0")
    return page


def _render(hits: list[MemoryItem], page: int, size: int, what: str, more: bool) -> str:
    if not hits:
        return f"No {what} found" + (" on this page." if page else ".")
    head = f"{what.capitalize()}, page {page} (results {page * size + 1}-{page * size + len(hits)}):"
    tail = f"\n(more: page={page + 1})" if more else ""
    return head + "\n" + "\n".join(_line(h) for h in hits) + tail


async def _ranked(memory: LongTermMemory, collection: str, user: str, query: str, page: int,
                  size: int) -> tuple[list[Hit], bool]:
    if not query.strip():
        raise ToolError("query is empty")
    hits = await memory.search(collection, user, query, limit=size + 1, offset=page * size)  # type: ignore[arg-type]
    return hits[:size], len(hits) > size


async def conversation(memory: LongTermMemory, user: str, query: str, page: object, size: int,
                       now: float | None = None) -> str:
    p = _page(page)
    hits, more = await _ranked(memory, "recall", user, query, p, size)
    return _render([h.item for h in hits], p, size, "past messages", more)


async def archival(memory: LongTermMemory, user: str, query: str, page: object, size: int,
                   now: float | None = None) -> str:
    p = _page(page)
    hits, more = await _ranked(memory, "archival", user, query, p, size)
    return _render([h.item for h in hits], p, size, "archival notes", more)


def parse_day(text: str, field: str) -> datetime:
    try:
        return datetime.strptime(text.strip()[:10], "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise ToolError(f"{field} must be a date like 2024-05-31") from None


async def conversation_by_date(memory: LongTermMemory, user: str, start: str, end: str,
                               page: object, size: int) -> str:
    p = _page(page)
    since = parse_day(start, "start_date")
    until = parse_day(end, "end_date") + timedelta(days=1)
    if until <= since:
        raise ToolError("end_date is before start_date")
    items = await memory.by_time("recall", user, since=since.timestamp(), until=until.timestamp(),
                                 limit=size + 1, offset=p * size)
    return _render(items[:size], p, size, "past messages", len(items) > size)
