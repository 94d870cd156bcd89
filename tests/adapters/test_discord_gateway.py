"""The Discord adapter through the real discord.py client connected to the local Discord
emulator (REST + gateway): messages in, replies out, reconnects, rate limits."""

from __future__ import annotations

import asyncio

import pytest

from bot.errors import DeliveryError
from bot.events import Reply, UserRef
from bot.testing.fake_openai import last_event
from tests.adapters.conftest import DiscordEnv


async def test_dm_is_answered(discord_env: DiscordEnv) -> None:
    """A DM arrives as MESSAGE_CREATE over the gateway and is answered in the DM, with typing."""
    emu = discord_env.emu
    alice = emu.add_user("alice")
    discord_env.say("Hi Alice!")
    dm = emu.dm_with(alice)
    await emu.user_message(dm, alice, "hello")
    await emu.wait(lambda: len(emu.sent) == 1)
    assert emu.sent[0]["content"] == "Hi Alice!" and emu.sent[0]["channel_id"] == str(dm.id)
    assert dm.id in emu.typing
    await asyncio.sleep(0.3)
    assert len(emu.sent) == 1


async def test_mention_in_channel_replies_to_the_message(discord_env: DiscordEnv) -> None:
    """A mention in #general is answered as a reply to it, pinging nobody; the agent sees
    the text without the mention and knows others can read it."""
    emu = discord_env.emu
    alice = emu.add_user("alice")
    discord_env.say("Hello channel")
    msg = await emu.user_message(emu.general, alice, "what's new?", mention_bot=True)
    await emu.wait(lambda: len(emu.sent) == 1)
    sent = emu.sent[0]
    assert sent["channel_id"] == str(emu.general.id)
    assert str(sent["message_reference"]["message_id"]) == msg["id"]
    assert sent["_allowed_mentions"]["parse"] == [] and sent["type"] == 19
    line = last_event(discord_env.fake.requests[0])
    assert line.endswith("what's new?") and "<@" not in line and "in #general" in line


async def test_thread_mention_answered_in_thread(discord_env: DiscordEnv) -> None:
    """A mention inside a thread is answered in that thread."""
    emu = discord_env.emu
    alice = emu.add_user("alice")
    discord_env.say("In the thread")
    await emu.user_message(emu.thread, alice, "ok?", mention_bot=True)
    await emu.wait(lambda: len(emu.sent) == 1)
    assert emu.sent[0]["channel_id"] == str(emu.thread.id)
    assert "in #planning" in last_event(discord_env.fake.requests[0])


async def test_without_content_intent_unaddressed_messages_are_ignored(discord_env: DiscordEnv) -> None:
    """Chatter that does not mention the bot arrives without content (no privileged intent)
    and is not answered; edits and deletions of a message are not answered either."""
    emu = discord_env.emu
    alice = emu.add_user("alice")
    session = next(iter(emu.gateway.sessions.values()))
    assert session.intents & (1 << 15) == 0  # message content was not asked for
    chatter = await emu.user_message(emu.general, alice, "just chatting")
    assert session.buffer[-1]["d"]["content"] == "" and chatter["content"] == "just chatting"
    discord_env.say("answer")
    msg = await emu.user_message(emu.dm_with(alice), alice, "first version")
    await emu.wait(lambda: len(emu.sent) == 1)
    await emu.edit_message(msg, "second version")
    await emu.delete_message(msg)
    await asyncio.sleep(0.5)
    assert len(emu.sent) == 1 and len(discord_env.fake.requests) == 1


async def test_gateway_drop_and_resume_mid_conversation(discord_env: DiscordEnv) -> None:
    """The socket dies with a message in flight: discord.py RESUMEs, the missed
    MESSAGE_CREATE is replayed, and every message is answered exactly once."""
    emu = discord_env.emu
    alice = emu.add_user("alice")
    dm = emu.dm_with(alice)
    for text in ("one", "two", "three"):
        discord_env.say(text)
    await emu.user_message(dm, alice, "first")
    await emu.wait(lambda: len(emu.sent) == 1)
    session = next(iter(emu.gateway.sessions.values()))
    await emu.gateway.drop(session)
    await emu.user_message(dm, alice, "second")  # buffered for the session while it is away
    await emu.wait(lambda: session.resumes == 1 and session.connected)
    await emu.user_message(dm, alice, "third")
    await emu.wait(lambda: len(emu.sent) == 3)
    await asyncio.sleep(0.5)
    assert [m["content"] for m in emu.sent] == ["one", "two", "three"]
    assert len(emu.gateway.sessions) == 1  # resumed, not re-identified


async def test_reconnect_and_invalid_session(discord_env: DiscordEnv) -> None:
    """RECONNECT makes the client resume; INVALID_SESSION (not resumable) makes it IDENTIFY
    again; it keeps answering after both."""
    emu = discord_env.emu
    alice = emu.add_user("alice")
    session = next(iter(emu.gateway.sessions.values()))
    await emu.gateway.reconnect(session)
    await emu.wait(lambda: session.resumes == 1 and session.connected)
    await emu.gateway.invalidate(session, resumable=False)
    await emu.wait(lambda: len(emu.gateway.sessions) == 2 and all(
        s.connected for s in emu.gateway.sessions.values() if s is not session))
    discord_env.say("still here")
    await emu.user_message(emu.dm_with(alice), alice, "hello?")
    await emu.wait(lambda: len(emu.sent) == 1)
    assert emu.sent[0]["content"] == "still here"


async def test_rate_limited_send_is_retried_after_retry_after(discord_env: DiscordEnv) -> None:
    """A 429 on the reply honours retry_after: one reply, sent after the limit, not dropped."""
    emu = discord_env.emu
    alice = emu.add_user("alice")
    dm = emu.dm_with(alice)
    discord_env.say("patience")
    emu.fail("POST", rf"/channels/{dm.id}/messages$", 429, retry_after=1.0)
    await emu.user_message(dm, alice, "hi")
    await emu.wait(lambda: len(emu.sent) == 1)
    limited = [r for r in emu.rest.refused if r[2] == 429]
    assert len(limited) == 1  # discord.py waited instead of hammering
    await asyncio.sleep(0.3)
    assert [m["content"] for m in emu.sent] == ["patience"]


async def test_long_replies_split_or_become_a_file(discord_env: DiscordEnv) -> None:
    """Over 2,000 chars: chunks (only the first is a reply); over four chunks: one file."""
    emu = discord_env.emu
    alice = emu.add_user("alice")
    discord_env.say("\n\n".join(f"Part {i}. " + "lorem ipsum " * 90 for i in range(3)))
    await emu.user_message(emu.general, alice, "tell me", mention_bot=True)
    await emu.wait(lambda: len(emu.sent) == 3)
    assert ["message_reference" in m for m in emu.sent] == [True, False, False]
    discord_env.say("\n\n".join("word " * 300 for _ in range(5)))  # five 1,500-char paragraphs
    await emu.user_message(emu.general, emu.add_user("bob"), "more", mention_bot=True)
    await emu.wait(lambda: len(emu.sent) == 4)
    assert emu.sent[3]["content"].startswith("That's a long answer")
    assert emu.sent[3]["attachments"][0]["filename"] == "answer.md"
    assert emu.sent[3]["_files"][0].decode().startswith("word word")


async def test_proactive_reply_opens_the_dm(discord_env: DiscordEnv) -> None:
    """A reply with no target (a heartbeat message) fetches the user and opens their DM."""
    emu = discord_env.emu
    alice = emu.add_user("alice")
    await discord_env.svc.router.deliver(
        Reply(user=UserRef("discord", str(alice.id), "-"), text="Thinking of you", reply_to=""))
    assert emu.sent[0]["channel_id"] == str(emu.dm_with(alice).id)
    assert ("POST", "/users/@me/channels") in emu.rest.requests


async def test_server_errors_and_forbidden(discord_env: DiscordEnv) -> None:
    """One 500 is retried by discord.py and the reply goes out once; a channel the bot may
    not write to answers 403 50013, one it cannot see 403 50001."""
    emu = discord_env.emu
    alice = emu.add_user("alice")
    discord_env.say("after a hiccup")
    emu.fail("POST", r"/messages$", 500)
    await emu.user_message(emu.dm_with(alice), alice, "hi")
    await emu.wait(lambda: len(emu.sent) == 1, timeout_s=30)
    assert (emu.rest.refused[0][2], len(emu.sent)) == (500, 1)
    emu.general.bot_can_send = False
    emu.thread.bot_can_view = False
    for ch in (emu.general, emu.thread):
        reply = Reply(user=UserRef("discord", str(alice.id), "-"), text="x", reply_to=str(ch.id))
        with pytest.raises(DeliveryError, match="403"):  # classified by the outbox (issue 15)
            await discord_env.svc.router.deliver(reply)
    codes = {code for _, _, status, code in emu.rest.refused if status == 403}
    assert codes == {50013, 50001}
