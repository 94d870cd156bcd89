"""Memory health: the three indicators of the MemGPT practice guides, defined so they can fail.

- **Hit rate** (goal > 85%): of the memory searches the agent made (conversation_search,
  conversation_search_date, archival_memory_search), the share whose results it then
  *used*: a later message of the same step (a reply it sent, a memory edit) repeats at
  least ``USED_WORDS`` content words of the result's matches that were neither in the
  query nor in the user's message. A search that found nothing counts as a miss; a search
  whose results were ignored counts as a miss. "Returned anything" is not a hit.
- **Retrieval latency** (goal p99 < 200 ms): seconds in the vector store per search
  (``membot_search_seconds`` histogram, per deployment; not kept per user).
- **Memory growth** (goal < 5% a day): items stored (recall + archival) today against the
  count first seen on the previous recorded day, per user: (today - before) / before.

``step_searches`` reads one agent step's messages; ``HealthLog`` keeps the per-user
counters in Redis (bot.keys ``memory_health`` / ``memory_growth``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.messages import Message
from bot.stores.redis_store import RedisStore

SEARCH_TOOLS = ("conversation_search", "conversation_search_date", "archival_memory_search")
USED_WORDS = 2
_WORD = re.compile(r"[a-z0-9][a-z0-9'-]{3,}")
_EMPTY = ("No past messages found", "No archival notes found")


@dataclass(frozen=True)
class SearchUse:
    tool: str
    found: bool
    used: bool


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def _said_after(messages: Sequence[Message], start: int) -> str:
    """What the agent wrote after message ``start``: texts and tool-call arguments."""
    parts = []
    for m in messages[start + 1:]:
        if m.role == "assistant":
            parts.append(m.content)
            parts += [c.arguments for c in m.tool_calls if c.name not in SEARCH_TOOLS]
    return " ".join(parts)


def _match_text(result: str) -> str:
    """The matches of a search result (marked lines; every line but the header for notes)."""
    lines = result.splitlines()[1:]
    marked = [line for line in lines if line.startswith("> ")]
    return " ".join(marked or lines)


def step_searches(messages: Sequence[Message]) -> list[SearchUse]:
    """Each memory search of one step and whether its results were used (module docstring)."""
    queries: dict[str, str] = {}
    asked = " ".join(m.content for m in messages if m.kind == "user_message")
    out = []
    for n, m in enumerate(messages):
        for call in m.tool_calls:
            if call.name in SEARCH_TOOLS:
                queries[call.id] = call.arguments
        if m.kind != "tool_result" or m.name not in SEARCH_TOOLS:
            continue
        found = bool(m.content.strip()) and not m.content.startswith(_EMPTY) and not m.content.startswith("Error")
        fresh = _words(_match_text(m.content)) - _words(queries.get(m.tool_call_id, "")) - _words(asked)
        used = found and len(fresh & _words(_said_after(messages, n))) >= USED_WORDS
        out.append(SearchUse(m.name, found, used))
    return out


class HealthLog:
    """Per-user memory health counters in Redis."""

    def __init__(self, redis: RedisStore) -> None:
        self.redis = redis

    async def record(self, user: str, uses: Sequence[SearchUse]) -> None:
        if uses:
            await self.redis.hincr(self.redis.keys.memory_health(user), {
                "searches": len(uses), "found": sum(u.found for u in uses),
                "used": sum(u.used for u in uses)})

    async def note_size(self, user: str, items: int, now: float | None = None) -> None:
        """Remember the user's item count the first time it is seen on a UTC day."""
        day = time.strftime("%Y-%m-%d", time.gmtime(time.time() if now is None else now))
        await self.redis.hsetnx(self.redis.keys.memory_growth(user), day, str(items))

    async def report(self, user: str, items: int, now: float | None = None) -> dict[str, Any]:
        """The user's indicators: hit rate, mean search seconds, growth a day."""
        h = {k: float(v) for k, v in (await self.redis.hgetall(self.redis.keys.memory_health(user))).items()}
        days = await self.redis.hgetall(self.redis.keys.memory_growth(user))
        today = time.strftime("%Y-%m-%d", time.gmtime(time.time() if now is None else now))
        before = sorted(d for d in days if d < today)
        growth = None
        if before and int(days[before[-1]]) > 0:
            gap = max((time.mktime(time.strptime(today, "%Y-%m-%d"))
                       - time.mktime(time.strptime(before[-1], "%Y-%m-%d"))) / 86_400, 1)
            growth = ((items - int(days[before[-1]])) / int(days[before[-1]])) / gap
        searches = h.get("searches", 0.0)
        return {"searches": int(searches), "found": int(h.get("found", 0)), "used": int(h.get("used", 0)),
                "hit_rate": (h.get("used", 0) / searches) if searches else None,
                "items": items, "growth_per_day": growth}
