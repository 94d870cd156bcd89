"""Delivery to Discord: replies split at 2,000 characters (a file when very long), replies
threaded to the message they answer, and a typing indicator while the agent works.

Failures become ``DeliveryError``: permanent for Missing Access/Permissions, Unknown
Channel, Cannot DM this user, cannot reply without history (50001/50013/10003/50007/
160002, and 403/404 generally), temporary for 429 (discord.py's own wait is capped, the
rest goes to the background retry) and 5xx/network errors. Each chunk is sent with a
``nonce`` derived from the reply id and part, which discord.py sends with
``enforce_nonce``: Discord answers a re-send after a crash with the message it already has.
No timeout shorter than discord.py's own rate-limit wait wraps a send.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
from typing import Any, Protocol

import aiohttp
import discord

from adapters.chunking import split_message
from adapters.tasks import TaskSet
from bot.errors import DeliveryError
from bot.events import Event, Reply

log = logging.getLogger("membot.discord")

LIMIT = 2_000
MAX_CHUNKS = 4  # longer answers go out as one Markdown file
FILE_NOTE = "That's a long answer, so here it is as a file."
NO_PINGS = discord.AllowedMentions.none()
PERMANENT_CODES = {50001, 50013, 10003, 50007, 160002, 10008, 10013}
TYPING_MAX_S = 60.0  # a step answered on another replica never stops this one's indicator


def classify(exc: Exception, parts_done: int) -> DeliveryError:
    """A discord.py/network failure as a permanent or temporary DeliveryError."""
    if isinstance(exc, discord.RateLimited):
        return DeliveryError("discord 429", retry_after=exc.retry_after, parts_done=parts_done)
    if isinstance(exc, discord.HTTPException):
        status, code = int(exc.status or 0), int(exc.code or 0)
        if status == 429:
            return DeliveryError("discord 429", retry_after=_retry_after(exc), parts_done=parts_done)
        permanent = code in PERMANENT_CODES or status in (400, 403, 404)
        return DeliveryError(f"discord {status} {code}", permanent=permanent, parts_done=parts_done)
    return DeliveryError(f"discord {type(exc).__name__}: {exc}", parts_done=parts_done)


def _retry_after(exc: discord.HTTPException) -> float | None:
    headers = getattr(exc.response, "headers", None) or {}
    try:
        return float(headers.get("Retry-After")) if headers.get("Retry-After") else None
    except (TypeError, ValueError):
        return None


def nonce(reply_id: str, part: int) -> str:
    """Discord's idempotency key for one chunk (at most 25 characters)."""
    return hashlib.sha256(f"{reply_id}:{part}".encode()).hexdigest()[:25]


class ChannelSource(Protocol):
    """What the outbox needs of the discord.py client (a fake in tests)."""

    def get_channel(self, id: int, /) -> Any: ...
    async def fetch_channel(self, id: int, /) -> Any: ...
    def get_user(self, id: int, /) -> Any: ...
    async def fetch_user(self, id: int, /) -> Any: ...


class Typing:
    """One typing loop per event: started on submit, stopped on completion (or a cap)."""

    def __init__(self, every_s: float = 8.0, max_s: float = TYPING_MAX_S) -> None:
        self.every_s = every_s
        self.max_s = max_s
        self.tasks = TaskSet()

    def start(self, event_id: str, channel: Any) -> None:
        self.tasks.spawn(self._loop(channel), name=event_id)

    def stop(self, event_id: str) -> bool:
        return self.tasks.cancel(event_id)

    def __contains__(self, event_id: str) -> bool:
        return event_id in self.tasks

    async def _loop(self, channel: Any) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_s
        while loop.time() < deadline:
            try:
                await asyncio.wait_for(channel.typing(), 10)  # one indicator lasts ~10 s
            except (discord.HTTPException, TimeoutError):
                log.debug("typing indicator failed")
            await asyncio.sleep(self.every_s)

    async def close(self) -> None:
        await self.tasks.close(grace_s=0)


class DiscordOutbox:
    def __init__(self, client: ChannelSource, limit: int = LIMIT, max_chunks: int = MAX_CHUNKS) -> None:
        self.client = client
        self.limit = limit
        self.max_chunks = max_chunks
        self.typing = Typing()

    async def deliver(self, reply: Reply) -> None:
        if reply.kind == "trace":  # inner thoughts stay out of chat platforms
            return
        done = reply.part
        try:
            channel, reference = await self._target(reply)
            chunks = split_message(reply.text, self.limit)
            if len(chunks) > self.max_chunks:
                data = io.BytesIO(reply.text.encode("utf-8"))
                await channel.send(FILE_NOTE, file=discord.File(data, filename="answer.md"),
                                   nonce=nonce(reply.id, 0), **_reply_kwargs(reference))
                return
            for i in range(done, len(chunks)):
                await channel.send(chunks[i], nonce=nonce(reply.id, i),
                                   **_reply_kwargs(reference if i == 0 else None))
                done = i + 1
        except (discord.DiscordException, aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise classify(exc, done) from exc

    async def completed(self, event: Event) -> None:
        self.typing.stop(event.event_id)

    async def _target(self, reply: Reply) -> tuple[Any, discord.MessageReference | None]:
        """The channel to send to and the message to reply to (none in DMs)."""
        if not reply.reply_to:  # proactive message (heartbeat): the user's DM
            uid = int(reply.user.user_id)
            user = self.client.get_user(uid) or await self.client.fetch_user(uid)
            return await user.create_dm(), None
        channel_id, _, message_id = reply.reply_to.partition(":")
        cid = int(channel_id)
        channel = self.client.get_channel(cid) or await self.client.fetch_channel(cid)
        if not message_id:
            return channel, None
        ref = discord.MessageReference(message_id=int(message_id), channel_id=cid,
                                       fail_if_not_exists=False)
        return channel, ref

    async def close(self) -> None:
        await self.typing.close()


def _reply_kwargs(reference: discord.MessageReference | None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"allowed_mentions": NO_PINGS}
    if reference is not None:
        kwargs["reference"] = reference
        kwargs["mention_author"] = False
    return kwargs
