"""The Slack adapter in Socket Mode: the real AsyncSocketModeHandler connected to the local
Socket Mode emulator, the real core behind it, Slack's ack timing and redelivery rules."""

from __future__ import annotations

import asyncio

from bot.testing.fake_openai import last_event
from bot.testing.slack_payloads import action, command, dm, mention
from tests.adapters.conftest import SocketEnv


async def test_dm_over_socket_mode_is_acked_in_time_and_answered(slack_socket: SocketEnv) -> None:
    """A DM envelope is acked inside Slack's 3 s window and answered in its thread."""
    slack_socket.say("Hello over the socket")
    env = await slack_socket.slack.event(dm("hi bot"))
    await slack_socket.slack.acked(env)
    assert env.ack_delay_s is not None and env.ack_delay_s < 3.0 and env.ack_payload is None
    await slack_socket.slack.wait(lambda: len(slack_socket.slack.posts()) == 1)
    post = slack_socket.slack.posts()[0]
    assert (post["channel"], post["thread_ts"], post["markdown_text"]) == (
        "D1", "1700000000.000100", "Hello over the socket")
    assert slack_socket.slack.violations == []


async def test_mention_and_thread_replies(slack_socket: SocketEnv) -> None:
    """A channel mention gets a threaded reply; a mention inside a thread stays in that thread."""
    emu = slack_socket.slack
    slack_socket.say("Hi channel")
    slack_socket.say("In the thread")
    await emu.event(mention("<@UBOT> hello"))
    await emu.wait(lambda: len(emu.posts()) == 1)
    await emu.event(mention("<@UBOT> and?", ts="1700000009.000900", thread_ts="1700000001.000200"))
    await emu.wait(lambda: len(emu.posts()) == 2)
    assert [(p["channel"], p["thread_ts"]) for p in emu.posts()] == [
        ("C1", "1700000001.000200"), ("C1", "1700000001.000200")]
    assert "in #general" in last_event(slack_socket.fake.requests[0])


async def test_slash_command_and_confirm_button_envelopes(slack_socket: SocketEnv) -> None:
    """/memory reset arrives as slash_commands, the click as interactive; both acked in time,
    the reset happens only after the confirm click."""
    emu = slack_socket.slack
    slack_socket.say("noted")
    await emu.event(dm("remember me"))
    await emu.wait(lambda: len(emu.posts()) == 1)
    cmd = await emu.send("slash_commands", command("reset", "U1", emu.response_url("ask")))
    await emu.acked(cmd)
    await emu.wait(lambda: len(emu.responses) == 1)
    question = emu.responses[0]
    assert question["response_type"] == "ephemeral"
    value = str(question["blocks"][1]["elements"][0]["value"])
    assert (await slack_socket.svc.admin.show("slack:T1:U1"))["fifo_messages"] > 0
    click = await emu.send("interactive", action("memory_confirm", value, "U1", emu.response_url("ok")))
    await emu.acked(click)
    await emu.wait(lambda: len(emu.responses) == 2)
    assert "deleted" in emu.responses[1]["text"] and emu.responses[1]["replace_original"] is True
    assert (await slack_socket.svc.admin.show("slack:T1:U1"))["fifo_messages"] == 0
    assert emu.violations == [] and emu.timeouts == [] and emu.errors == []


async def test_refresh_with_an_envelope_in_flight_answers_once(slack_socket: SocketEnv) -> None:
    """Slack rotates the connection while a DM is in flight: the client reconnects, the DM is
    acked and answered exactly once, later messages arrive on the new connection."""
    emu = slack_socket.slack
    slack_socket.say("first")
    slack_socket.say("second")
    first_conn = emu.open_connections()[0]
    env = await emu.event(dm("during the refresh"))
    await emu.refresh(first_conn, warn=True)
    await emu.acked(env)
    conns = await emu.wait_connections(1)
    assert conns[0].id != first_conn.id
    later = await emu.event(dm("after it", ts="1700000002.000300"))
    await emu.acked(later)
    assert later.sent[0][0] == conns[0].id
    await emu.wait(lambda: len(emu.posts()) == 2)
    await asyncio.sleep(0.5)
    assert [p["markdown_text"] for p in emu.posts()] == ["first", "second"]
    assert emu.violations == []


async def test_dropped_connection_loses_nothing(slack_socket: SocketEnv) -> None:
    """The socket dies right after an envelope went out: the client reconnects on its own and
    the DM is acked and answered exactly once."""
    emu = slack_socket.slack
    slack_socket.say("still here")
    conn = emu.open_connections()[0]
    env = await emu.event(dm("are you there?"))
    await emu.drop(conn)
    await emu.acked(env, timeout_s=15)
    assert (await emu.wait_connections(1))[0].id != conn.id
    await emu.wait(lambda: len(emu.posts()) == 1)
    await asyncio.sleep(0.5)
    assert len(emu.posts()) == 1 and len(slack_socket.fake.requests) == 1


async def test_unacked_envelope_is_redelivered_and_answered_once(slack_socket: SocketEnv) -> None:
    """An ack lost on the way makes Slack send the event again (retry_attempt 1); the
    journaled event is acked as a duplicate and answered once."""
    emu = slack_socket.slack
    slack_socket.say("only once")
    emu.lose_acks = 1
    env = await emu.event(dm("are you there?"))
    await emu.acked(env, timeout_s=15)
    assert len(env.sent) == 2 and emu.lost == [env.id]
    await emu.wait(lambda: len(emu.posts()) == 1)
    await asyncio.sleep(0.5)
    assert len(emu.posts()) == 1 and len(slack_socket.fake.requests) == 1
    assert emu.violations == []


async def test_events_not_acked_when_the_core_is_closed_are_retried(slack_socket: SocketEnv) -> None:
    """While the core refuses events (shutting down) the envelope is not acked, so Slack
    retries it; once accepted it is answered."""
    emu = slack_socket.slack
    slack_socket.say("back")
    slack_socket.svc.inbox.accepting = False
    env = await emu.event(dm("knock knock"))
    await asyncio.sleep(emu.ack_timeout_s + 0.1)
    assert env.acked_at is None
    slack_socket.svc.inbox.accepting = True
    await emu.acked(env, timeout_s=10)
    assert len(env.sent) >= 2
    await emu.wait(lambda: len(emu.posts()) == 1)
