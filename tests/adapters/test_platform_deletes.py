"""A message deleted on the platform is removed from the author's recall and FIFO: Slack
``message_deleted`` through the real bolt app, Discord ``on_raw_message_delete``."""

from __future__ import annotations

import json

import discord

from adapters.discord_adapter import MembotBot
from bot.testing.fake_openai import tool_call
from bot.testing.slack_payloads import dm, event_body
from tests.adapters.conftest import SlackEnv
from tests.conftest import Harness


async def test_slack_deleted_dm_leaves_recall(slack: SlackEnv) -> None:
    """Deleting a DM in Slack deletes its recall item and its FIFO line."""
    slack.fake.push(tool_call("send_message", message="noted", request_heartbeat=False))
    assert await slack.post(event_body(dm("my locker is 8812"))) == 200
    await slack.api.wait(lambda: len(slack.api.calls_to("chat.postMessage")) == 1)
    await slack.svc.writer.flush()
    key = "slack:T1:U1"
    assert "8812" in json.dumps([i.text for i in await slack.svc.admin._all("recall", key)])
    deleted = {"type": "message", "subtype": "message_deleted", "channel": "D1",
               "channel_type": "im", "hidden": True, "deleted_ts": "1700000000.000100",
               "ts": "1700000099.000100", "event_ts": "1700000099.000100"}
    assert await slack.post(event_body(deleted, event_id="EvDel")) == 200
    state = await slack.svc.states.load(key)
    assert "8812" not in json.dumps(state.to_dict())
    assert "8812" not in json.dumps([i.text for i in await slack.svc.admin._all("recall", key)])
    assert [e.action for e in await slack.svc.audit_log.entries(key)] == ["message_deleted"]


async def test_discord_raw_delete_leaves_recall(harness: Harness) -> None:
    """on_raw_message_delete removes the Discord message (found by its id) from recall."""
    from bot.events import Channel, Event, UserRef

    ev = Event(kind="user_message", user=UserRef("discord", "1", "-"), text="door code 5530",
               event_id="discord:4242", channel=Channel(where="dm", id="10"), reply_to="10")
    harness.fake.push(tool_call("send_message", message="ok", request_heartbeat=False))
    waiter = harness.outbox.expect(ev.event_id)
    harness.svc.router.register("discord", harness.outbox)
    assert await harness.svc.submit(ev) == "accepted"
    await waiter.wait()
    bot = MembotBot(harness.svc.settings, harness.svc)
    payload = discord.RawMessageDeleteEvent({"id": "4242", "channel_id": "10"})  # type: ignore[typeddict-item]
    await bot.on_raw_message_delete(payload)
    key = "discord:-:1"
    assert "5530" not in json.dumps([i.text for i in await harness.svc.admin._all("recall", key)])
    assert "5530" not in json.dumps((await harness.svc.states.load(key)).to_dict())
    await bot.close()
