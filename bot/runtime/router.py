"""Routes replies to the adapter that owns their platform, translating failures into
``DeliveryError`` (permanent or temporary). Retrying is ``bot.runtime.delivery``'s job."""

from __future__ import annotations

import asyncio
import logging

from bot.errors import DeliveryError
from bot.events import Event, Outbox, Reply

log = logging.getLogger(__name__)


class Router:
    def __init__(self, timeout_s: float = 120.0) -> None:
        self._outboxes: dict[str, Outbox] = {}
        # a bound on one delivery, above the SDKs' own rate-limit waits (which must not be
        # cut short: a cancelled send may still be posted)
        self.timeout_s = timeout_s

    def register(self, platform: str, outbox: Outbox) -> None:
        self._outboxes[platform] = outbox

    def has(self, platform: str) -> bool:
        return platform in self._outboxes

    def unregister(self, platform: str) -> None:
        self._outboxes.pop(platform, None)

    async def deliver(self, reply: Reply) -> None:
        """Deliver once; raises DeliveryError. A platform with no adapter in this process
        drops the reply with a warning: nothing here could ever deliver it."""
        outbox = self._outboxes.get(reply.user.platform)
        if outbox is None:
            log.warning("no adapter for platform %s; reply dropped", reply.user.platform)
            return
        try:
            await asyncio.wait_for(outbox.deliver(reply), self.timeout_s)
        except DeliveryError:
            raise
        except Exception as exc:  # adapters translate what they know; the rest may pass
            log.warning("delivery failed: %s: %s", type(exc).__name__, exc)
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc

    async def completed(self, event: Event) -> None:
        outbox = self._outboxes.get(event.user.platform)
        if outbox is None:
            return
        try:
            await asyncio.wait_for(outbox.completed(event), 15.0)
        except Exception:
            log.exception("completion hook failed")
