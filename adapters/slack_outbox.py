"""Delivery to Slack through the Web API: threaded replies split under Slack's limits,
very long answers as a file, proactive messages to the user's DM with the app.

Failures become ``DeliveryError``: permanent for errors a retry cannot fix (not in the
channel, channel gone or archived, text refused), temporary with Retry-After for 429 and
for 5xx and network errors. Every chunk carries message ``metadata`` naming the reply and
part; a re-send after a crash (``reply.resend``) first looks for those in the conversation
and skips the parts already there, so nothing is posted twice.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.chunking import split_message
from bot.errors import DeliveryError
from bot.events import Event, Reply

log = logging.getLogger("membot.slack")

LIMIT = 3_500
MAX_CHUNKS = 4
FILE_NOTE = "That's a long answer, so here it is as a file."
META_TYPE = "membot_reply"
PERMANENT = {"not_in_channel", "channel_not_found", "is_archived", "msg_too_long", "invalid_blocks",
             "no_text", "cannot_dm_bot", "user_not_found", "user_disabled", "restricted_action",
             "not_allowed_token_type", "invalid_metadata_format", "ekm_access_denied",
             "invalid_thread_ts", "markdown_text_conflict"}
_BROADCAST = re.compile(r"<!(here|channel|everyone)(\|[^>]*)?>")
_GROUP = re.compile(r"<!subteam\^[A-Za-z0-9]+(?:\|@?([^>]*))?>")
_USER = re.compile(r"<@([UW][A-Za-z0-9]+)(?:\|([^>]*))?>")


def defuse(text: str) -> str:
    """No pings from model output: @here/@channel/@everyone, user groups and user mentions
    become plain text."""
    text = _BROADCAST.sub(r"@\1", text)
    text = _GROUP.sub(lambda m: f"@{m[1] or 'group'}", text)
    return _USER.sub(lambda m: f"@{m[2] or m[1]}", text)


def target(reply: Reply) -> tuple[str, str | None]:
    """(channel, thread_ts) from ``CHANNEL:THREAD_TS``; the user's DM when empty."""
    if not reply.reply_to:
        return reply.user.user_id, None  # chat.postMessage to a user id = the app DM
    channel, _, thread_ts = reply.reply_to.partition(":")
    return channel, thread_ts or None


def classify(exc: Exception, parts_done: int) -> DeliveryError:
    """A Slack SDK/network failure as a permanent or temporary DeliveryError."""
    if isinstance(exc, SlackApiError):
        code = str(exc.response.get("error") or "")
        status = int(getattr(exc.response, "status_code", 0) or 0)
        if status == 429 or code == "ratelimited":
            after = exc.response.headers.get("Retry-After") if exc.response.headers else None
            return DeliveryError(f"slack 429 {code}", retry_after=_seconds(after), parts_done=parts_done)
        return DeliveryError(f"slack {status} {code}", permanent=code in PERMANENT,
                             parts_done=parts_done)
    return DeliveryError(f"slack {type(exc).__name__}: {exc}", parts_done=parts_done)


def _seconds(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


class SlackOutbox:
    def __init__(self, client: AsyncWebClient, limit: int = LIMIT, max_chunks: int = MAX_CHUNKS) -> None:
        self.client = client
        self.limit = limit
        self.max_chunks = max_chunks

    async def deliver(self, reply: Reply) -> None:
        if reply.kind == "trace":  # inner thoughts stay out of chat platforms
            return
        done = reply.part
        try:
            channel, thread_ts = target(reply)
            text = defuse(reply.text)
            chunks = split_message(text, self.limit)
            if len(chunks) > self.max_chunks:
                await self._upload(reply, channel, thread_ts, text)
                return
            if reply.resend:
                done = max(done, await self._posted(reply, channel, thread_ts))
            for i in range(done, len(chunks)):
                # markdown_text: the model writes standard Markdown, which Slack renders from it
                await self.client.chat_postMessage(
                    channel=channel, thread_ts=thread_ts, markdown_text=chunks[i],
                    metadata={"event_type": META_TYPE, "event_payload": {"reply": reply.id, "part": i}})
                done = i + 1
        except (SlackApiError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise classify(exc, done) from exc

    async def _upload(self, reply: Reply, channel: str, thread_ts: str | None, text: str) -> None:
        if not reply.reply_to:  # files need a conversation id, not a user id
            opened = await self.client.conversations_open(users=channel)
            channel = str(opened["channel"]["id"])
        await self.client.files_upload_v2(channel=channel, thread_ts=thread_ts, content=text,
                                          filename="answer.md", title="Answer",
                                          initial_comment=FILE_NOTE)

    async def _posted(self, reply: Reply, channel: str, thread_ts: str | None) -> int:
        """How many leading parts of this reply are already in the conversation."""
        try:
            if not reply.reply_to:
                channel = str((await self.client.conversations_open(users=channel))["channel"]["id"])
            if thread_ts:
                page = await self.client.conversations_replies(channel=channel, ts=thread_ts, limit=200,
                                                               include_all_metadata=True)
            else:
                page = await self.client.conversations_history(channel=channel, limit=50,
                                                               include_all_metadata=True)
        except SlackApiError as exc:  # cannot tell: re-send (a possible duplicate beats a loss)
            log.warning("could not check for an earlier copy of reply %s: %s", reply.id,
                        exc.response.get("error"))
            return 0
        parts = set()
        for msg in page.get("messages") or []:
            meta = msg.get("metadata") or {}
            payload = meta.get("event_payload") or {}
            if meta.get("event_type") == META_TYPE and payload.get("reply") == reply.id:
                parts.add(int(payload.get("part", 0)))
        n = 0
        while n in parts:
            n += 1
        return n

    async def completed(self, event: Event) -> None:
        return None  # Slack has no typing indicator for bots
