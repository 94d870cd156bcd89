"""Routes replies to the adapter that owns their platform."""

from __future__ import annotations

import asyncio
import logging

from bot.events import Event, Outbox, Reply

log = logging.getLogger(__name__)


class Router:
    def __init__(self, attempts: int = 3, timeout_s: float = 15.0) -> None:
        self._outboxes: dict[str, Outbox] = {}
        self.attempts = attempts
        self.timeout_s = timeout_s

    def register(self, platform: str, outbox: Outbox) -> None:
        self._outboxes[platform] = outbox

    def has(self, platform: str) -> bool:
        return platform in self._outboxes

    def unregister(self, platform: str) -> None:
        self._outboxes.pop(platform, None)

    async def deliver(self, reply: Reply) -> bool:
        """Deliver with bounded retries. False when the adapter failed every attempt (the
        caller keeps the reply queued). A platform with no adapter in this process drops
        the reply with a warning: nothing here could ever deliver it."""
        outbox = self._outboxes.get(reply.user.platform)
        if outbox is None:
            log.warning("no adapter for platform %s; reply dropped", reply.user.platform)
            return True
        for attempt in range(1, self.attempts + 1):
            try:
                await asyncio.wait_for(outbox.deliver(reply), self.timeout_s)
                return True
            except Exception:
                log.exception("delivery failed (attempt %d/%d)", attempt, self.attempts)
                await asyncio.sleep(0.2 * attempt)
        return False

    async def completed(self, event: Event) -> None:
        outbox = self._outboxes.get(event.user.platform)
        if outbox is None:
            return
        try:
            await asyncio.wait_for(outbox.completed(event), self.timeout_s)
        except Exception:
            log.exception("completion hook failed")
