"""Dedupe that survives a Redis flush: the platform's replay of an event answered before the
flush is recognised from recall storage (the event id goes with the recall item)."""

from __future__ import annotations

import asyncio

from bot.events import Channel, Event, UserRef
from bot.testing.fake_openai import tool_call
from tests.conftest import Harness


async def test_replay_after_flush_is_not_answered_again(harness: Harness) -> None:
    """Events answered, Redis flushed, the same events re-sent: none is answered twice;
    a new message is still answered."""
    user = UserRef("test", "alice", "g1")
    events = [Event(kind="user_message", user=user, text=f"message {i}", channel=Channel(),
                    reply_to="chan", event_id=f"slack:T1:D1:17000000{i}.000100", ts=1_700_000_000.0 + i)
              for i in range(3)]
    for i, ev in enumerate(events):
        harness.fake.push(tool_call("send_message", message=f"answer {i}", request_heartbeat=False))
        waiter = harness.outbox.expect(ev.event_id)
        assert await harness.svc.submit(ev) == "accepted"
        await asyncio.wait_for(waiter.wait(), 20)
    await harness.svc.writer.flush()
    calls = len(harness.fake.requests)

    await harness.svc.redis.delete_prefix()  # Redis loses everything, dedupe marks included

    for ev in events:
        assert await harness.svc.submit(ev) in ("accepted", "duplicate")
    await asyncio.sleep(1.5)
    assert len(harness.fake.requests) == calls
    assert harness.outbox.texts() == ["answer 0", "answer 1", "answer 2"]
    harness.fake.push(tool_call("send_message", message="new one", request_heartbeat=False))
    await harness.say("something new")
    assert harness.outbox.texts()[-1] == "new one"
