"""Who may talk to the bot at all (docs/privacy.md), decided in the core for every event.

- ``ALLOWED_GUILDS`` / ``ALLOWED_TEAMS``: events from any other Discord server or Slack
  workspace are refused (the Discord adapter also leaves such servers).
- ``DM_ONLY``: channel and thread events are refused; DMs are answered.
- ``CHANNEL_OPT_IN``: a channel event is answered only in a channel a server admin enabled
  (``/bot channels enable``); the enabled channels are kept durably in the vector store's
  document slot (under ``server:PLATFORM:SERVER``), cached here for ``CACHE_S``.
"""

from __future__ import annotations

import time

from bot.config import Settings
from bot.events import Event
from bot.protocols import VectorStore

CHANNELS_DOC = "channels"
CACHE_S = 30.0


def server_of(event: Event) -> str:
    """The Discord guild / Slack team an event comes from ("" for a Discord DM)."""
    if event.channel.server:
        return event.channel.server
    return event.user.scope if event.user.platform == "slack" else ""


class Admission:
    def __init__(self, settings: Settings, store: VectorStore) -> None:
        self.settings = settings
        self.store = store
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}

    def server_allowed(self, platform: str, server: str) -> bool:
        allowed = self.settings.allowed_servers(platform)
        return not allowed or not server or server in allowed

    async def allows(self, event: Event) -> bool:
        """Whether the bot may take this event at all."""
        platform, server = event.user.platform, server_of(event)
        if not self.server_allowed(platform, server):
            return False
        if event.channel.where not in ("channel", "thread"):
            return True
        if self.settings.dm_only:
            return False
        if self.settings.channel_opt_in:
            return event.channel.id in await self.channels(platform, server)
        return True

    # --- per-channel opt-in ---------------------------------------------------------------------
    @staticmethod
    def _key(platform: str, server: str) -> str:
        return f"server:{platform}:{server}"

    async def channels(self, platform: str, server: str) -> frozenset[str]:
        key = self._key(platform, server)
        hit = self._cache.get(key)
        if hit is not None and time.monotonic() - hit[0] < CACHE_S:
            return hit[1]
        doc = await self.store.get_doc(key, CHANNELS_DOC) or {}
        ids = frozenset(str(i) for i in doc.get("ids") or [])
        self._cache[key] = (time.monotonic(), ids)
        return ids

    async def set_channel(self, platform: str, server: str, channel: str, on: bool) -> frozenset[str]:
        """Enable or disable one channel of a server; returns the enabled channels."""
        self._cache.pop(self._key(platform, server), None)
        ids = set(await self.channels(platform, server))
        ids = ids | {channel} if on else ids - {channel}
        await self.store.put_doc(self._key(platform, server), CHANNELS_DOC, {"ids": sorted(ids)})
        self._cache[self._key(platform, server)] = (time.monotonic(), frozenset(ids))
        return frozenset(ids)
