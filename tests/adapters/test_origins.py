"""Adapters tell the core where a message was said: Discord guild and Slack workspace
channels carry their server, DMs carry none (the origin of everything stored from them)."""

from __future__ import annotations

from adapters.discord_inbound import message_event
from bot.memory import visibility
from bot.testing.fake_openai import tool_call
from bot.testing.slack_payloads import dm, event_body, mention
from tests.adapters.conftest import SlackEnv
from tests.adapters.discord_fakes import BOT_ID, FakeChannel, FakeGuild, FakeMessage, FakeUser


def test_discord_guild_and_dm_origins() -> None:
    """A mention in guild 500 is g:discord:500; a DM is the person's own scope."""
    bot, alice = FakeUser(id=BOT_ID, bot=True), FakeUser(id=1)
    in_guild = FakeMessage(id=1, content=f"<@{BOT_ID}> hi", author=alice, channel=FakeChannel(id=5),
                           guild=FakeGuild(id=500), mentions=[bot])
    in_dm = FakeMessage(id=2, content="hi", author=alice, channel=FakeChannel(id=6))
    ev_g, ev_d = message_event(in_guild, BOT_ID), message_event(in_dm, BOT_ID)
    assert ev_g is not None and ev_d is not None
    assert visibility.of_event(ev_g) == "g:discord:500"
    assert visibility.of_event(ev_d) == visibility.DM


async def test_slack_messages_are_stored_with_their_origin(slack: SlackEnv) -> None:
    """Through the real bolt app: a channel mention is stored as g:slack:T1, a DM as dm."""
    for body in (event_body(mention("<@UBOT> hi there")), event_body(dm("psst"), event_id="Ev2")):
        slack.fake.push(tool_call("send_message", message="ok", request_heartbeat=False))
        assert await slack.post(body) == 200
    await slack.api.wait(lambda: len(slack.api.calls_to("chat.postMessage")) == 2)
    state = await slack.svc.states.load("slack:T1:U1")
    users = [m for m in state.fifo if m.kind == "user_message"]
    assert sorted(m.vis for m in users) == ["dm", "g:slack:T1"]
    assert {m.vis for m in state.fifo} == {"dm", "g:slack:T1"}  # replies inherit the origin
