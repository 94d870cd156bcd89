"""Discord message routing details on small fakes of discord.py objects, the real core:
bot authors, other users' mentions, traces vs notices, typing cleanup, replies without a
ping. Conversations end to end run against the emulator (test_discord_gateway.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import discord
import pytest

from adapters.discord_adapter import MessageHandler
from adapters.discord_outbox import DiscordOutbox
from bot.events import Reply, UserRef
from bot.testing.fake_openai import last_event, tool_call
from tests.adapters.discord_fakes import (
    BOT_ID,
    FakeChannel,
    FakeClient,
    FakeGuild,
    FakeMessage,
    FakeUser,
)
from tests.conftest import Harness

ALICE = FakeUser(id=1, display_name="Alice")
BOT = FakeUser(id=BOT_ID, display_name="membot", bot=True)


@dataclass
class Env:
    harness: Harness
    client: FakeClient
    outbox: DiscordOutbox
    handler: MessageHandler

    def say(self, text: str) -> None:
        self.harness.fake.push(tool_call("send_message", message=text, request_heartbeat=False))

    def prompt_line(self) -> str:
        return last_event(self.harness.fake.requests[-1])


@pytest.fixture
async def env(harness: Harness) -> AsyncIterator[Env]:
    client = FakeClient()
    outbox = DiscordOutbox(client)
    harness.svc.router.register("discord", outbox)
    yield Env(harness, client, outbox, MessageHandler(harness.svc, outbox, content_intent=False))
    await outbox.close()


async def eventually(pred: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not pred():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def guild_message(text: str, channel: FakeChannel, mentions: list[FakeUser] | None = None,
                  author: FakeUser = ALICE, mid: int = 42) -> FakeMessage:
    return FakeMessage(id=mid, content=text, author=author, channel=channel, guild=FakeGuild(),
                       mentions=mentions or [])


async def test_bot_authors_are_ignored(env: Env) -> None:
    """Other bots (and the bot itself) are never answered, even when they mention it."""
    ch = FakeChannel(id=21)
    other_bot = FakeUser(id=5, display_name="otherbot", bot=True)
    assert await env.handler.handle(guild_message(f"<@{BOT_ID}> hi", ch, [BOT], other_bot), BOT_ID) == "ignored"
    dm = FakeMessage(id=43, content="echo", author=BOT, channel=FakeChannel(id=22))
    assert await env.handler.handle(dm, BOT_ID) == "ignored"


async def test_mention_is_stripped_and_replied_to(env: Env) -> None:
    """A mention is answered with a reply to the message; the agent sees the text without it."""
    ch = FakeChannel(id=30, name="general")
    env.client.add(ch)
    env.say("Hello channel")
    bob = FakeUser(id=2, display_name="Bob")
    msg = guild_message(f"<@!{BOT_ID}>  what does <@2> like?", ch, [BOT, bob], mid=77)
    assert await env.handler.handle(msg, BOT_ID) == "accepted"
    await eventually(lambda: bool(ch.sent))
    line = env.prompt_line()
    assert line.endswith("] what does @Bob like?") and "<@" not in line
    assert "in #general (others can read)" in line
    ref = ch.sent[0]["reference"]
    assert (ref.message_id, ref.channel_id, ch.sent[0]["mention_author"]) == (77, 30, False)


def _reply(text: str, kind: str = "message", reply_to: str = "50:60") -> Reply:
    return Reply(user=UserRef("discord", "1", "-"), text=text, reply_to=reply_to, kind=kind)  # type: ignore[arg-type]


async def test_traces_are_not_sent_but_notices_are() -> None:
    """Inner-thought traces never reach Discord; notices (e.g. rate limit) do."""
    ch = FakeChannel(id=50)
    outbox = DiscordOutbox(FakeClient().add(ch))
    await outbox.deliver(_reply("thinking about it", kind="trace"))
    await outbox.deliver(_reply("Please slow down.", kind="notice"))
    assert [m["content"] for m in ch.sent] == ["Please slow down."]


async def test_typing_stops_when_not_accepted(env: Env) -> None:
    """A message the core does not accept (duplicate) leaves no typing loop behind."""
    dm = FakeChannel(id=11, name="", type=discord.ChannelType.private)
    env.client.add(dm)
    env.say("first")
    msg = FakeMessage(id=44, content="hello", author=ALICE, channel=dm)
    assert await env.handler.handle(msg, BOT_ID) == "accepted"
    assert await env.handler.handle(msg, BOT_ID) == "duplicate"
    await eventually(lambda: len(env.outbox.typing.tasks) == 0 and bool(dm.sent))
    assert len(dm.sent) == 1


def test_reply_without_ping_needs_the_content_intent() -> None:
    """A reply to the bot that does not ping it is answered only with message content on."""
    from types import SimpleNamespace

    from adapters.discord_inbound import message_event

    bot_msg = SimpleNamespace(author=BOT)
    msg = guild_message("and what about tomorrow?", FakeChannel(id=60))
    msg.reference = SimpleNamespace(resolved=bot_msg)
    assert message_event(msg, BOT_ID, content_intent=False) is None
    event = message_event(msg, BOT_ID, content_intent=True)
    assert event is not None and event.text == "and what about tomorrow?"
    assert (event.user.key, event.reply_to, event.channel.where) == ("discord:-:1", "60:42", "channel")
