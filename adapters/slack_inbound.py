"""Slack events the bot answers (DMs and @mentions) and how they become core ``Event``s.

Slack user ids are scoped by workspace, so the memory key is ``slack:TEAM:USER``. The
event id is ``slack:TEAM:CHANNEL:TS``: Slack's retries of one delivery carry the same
message, and so does the rare double delivery as ``message`` and ``app_mention`` — both
are answered once. Retries are not dropped blindly: a retry is how an event whose first
delivery failed before it was journaled gets through.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.events import Channel, Event, UserRef

log = logging.getLogger("membot.slack")

ANSWERED_SUBTYPES = {None, "file_share", "thread_broadcast"}
EMPTY_MENTION = "(mentioned you without any text)"


def user_key(team: str, user: str) -> str:
    return UserRef(platform="slack", user_id=user, scope=team).key


def is_from_person(event: dict[str, Any], bot_user_id: str | None) -> bool:
    """False for bots (itself included), edits, deletions and other subtypes."""
    if event.get("subtype") not in ANSWERED_SUBTYPES or event.get("bot_id"):
        return False
    user = event.get("user")
    return bool(user) and user != bot_user_id


def clean_text(event: dict[str, Any], bot_user_id: str | None) -> str:
    text = str(event.get("text") or "")
    if bot_user_id:
        text = re.sub(rf"<@{bot_user_id}(\|[^>]*)?>", "", text)
    text = re.sub(r"[ \t]{2,}", " ", text).strip()
    files = [f"[attached file: {f.get('name', 'file')}]" for f in event.get("files") or []]
    return "\n".join([text, *files]).strip() or EMPTY_MENTION


def thread_of(event: dict[str, Any]) -> str:
    """The thread to answer in: the event's thread, or a new one under the message."""
    return str(event.get("thread_ts") or event["ts"])


def to_event(team: str, event: dict[str, Any], bot_user_id: str | None, channel: Channel) -> Event:
    ch, ts = str(event["channel"]), str(event["ts"])
    return Event(kind="user_message", user=UserRef("slack", str(event["user"]), team),
                 text=clean_text(event, bot_user_id), event_id=f"slack:{team}:{ch}:{ts}",
                 channel=channel, reply_to=f"{ch}:{thread_of(event)}", ts=float(ts))


class ChannelNames:
    """conversations.info names, cached; an empty name when Slack will not tell."""

    def __init__(self, client: AsyncWebClient, size: int = 2_000, timeout_s: float = 1.5) -> None:
        self.client = client
        self.timeout_s = timeout_s
        self.size = size
        self._names: dict[str, str] = {}

    async def name(self, channel_id: str) -> str:
        if channel_id not in self._names:
            if len(self._names) >= self.size:
                self._names.clear()
            try:  # inside Slack's 3 s ack window: a name is nice, not needed
                info = await asyncio.wait_for(self.client.conversations_info(channel=channel_id),
                                              self.timeout_s)
                self._names[channel_id] = str(info["channel"].get("name") or "")
            except SlackApiError as exc:
                log.warning("conversations.info failed: %s", exc.response.get("error"))
                return ""
            except Exception as exc:  # timeouts, connection errors: go on without a name
                log.warning("conversations.info failed: %s", type(exc).__name__)
                return ""
        return self._names[channel_id]

    async def channel(self, event: dict[str, Any], team: str = "") -> Channel:
        ch = str(event["channel"])
        if event.get("channel_type") == "im":
            return Channel(where="dm", id=ch)
        threaded = event.get("thread_ts") and event.get("thread_ts") != event.get("ts")
        return Channel(where="thread" if threaded else "channel", name=await self.name(ch), id=ch,
                       server=team)
