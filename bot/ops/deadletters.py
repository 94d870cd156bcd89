"""Dead letters: events and replies membot gave up on, for an operator to list, retry or drop.

An event lands here after ``MAX_EVENT_ATTEMPTS`` failed steps (the user was told and their
message kept in memory); a reply after a permanent refusal with no fallback or after
``DELIVERY_MAX_ATTEMPTS`` temporary failures. ``retry`` journals the event again (under a
new event id, so the first failure's record does not hide it) or queues the reply again.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any

from bot.errors import AdminError
from bot.events import Event
from bot.stores.redis_store import RedisStore


class DeadLetters:
    def __init__(self, redis: RedisStore) -> None:
        self.redis = redis

    async def entries(self) -> list[tuple[str, dict[str, Any]]]:
        """(raw entry, parsed entry), oldest first."""
        out = []
        for raw in await self.redis.dead_letters():
            try:
                out.append((raw, dict(json.loads(raw))))
            except ValueError:
                out.append((raw, {"id": "?", "kind": "unreadable", "raw": raw}))
        return out

    async def listing(self) -> list[dict[str, Any]]:
        """Entries without their raw payload, plus a short preview of what it was."""
        return [{k: v for k, v in e.items() if k != "raw"} | {"what": _preview(e)}
                for _, e in await self.entries()]

    async def _select(self, ids: list[str], everything: bool) -> list[tuple[str, dict[str, Any]]]:
        if not ids and not everything:
            raise AdminError("name dead-letter ids (see `membot dead-letters list`) or use --all")
        found = await self.entries()
        chosen = found if everything else [(r, e) for r, e in found if e.get("id") in ids]
        missing = set(ids) - {e.get("id") for _, e in chosen}
        if missing and not everything:
            raise AdminError(f"no dead letter with id {', '.join(sorted(missing))}")
        return chosen

    async def retry(self, ids: list[str], everything: bool = False) -> int:
        """Queue the chosen entries again; returns how many."""
        n = 0
        for raw, entry in await self._select(ids, everything):
            user, payload = str(entry.get("user") or ""), str(entry.get("raw") or "")
            if entry.get("kind") == "event":
                try:
                    event = Event.from_json(payload)
                except (ValueError, KeyError, TypeError):
                    raise AdminError(f"dead letter {entry.get('id')} is unreadable; drop it") from None
                again = replace(event, event_id=f"{event.event_id}:retry:{entry.get('id')}")
                await self.redis.journal(user, again.to_json())
            elif entry.get("kind") == "reply":
                await self.redis.outbox_push(user, payload)
                await self.redis.retry_later(user, time.time())
            else:
                raise AdminError(f"dead letter {entry.get('id')} cannot be retried; drop it")
            await self.redis.remove_dead_letter(raw)
            n += 1
        return n

    async def drop(self, ids: list[str], everything: bool = False) -> int:
        n = 0
        for raw, _ in await self._select(ids, everything):
            n += int(await self.redis.remove_dead_letter(raw))
        return n


def _preview(entry: dict[str, Any]) -> str:
    try:
        d = json.loads(str(entry.get("raw") or ""))
        return f"{d.get('kind', 'reply')}: {str(d.get('text', ''))[:60]}"
    except (ValueError, AttributeError):
        return "(unreadable)"
