"""Reset forgets everything of a person, everywhere, and stays forgotten (What was seen 5)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Sequence

from bot.events import Event, UserRef
from bot.memory.longterm import LongTermMemory, recall_item
from bot.memory.recall_writer import RecallWriter
from bot.messages import Message
from bot.protocols import Collection, MemoryItem
from bot.testing.fake_openai import tool_call
from tests.conftest import Harness


async def _keys_of(h: Harness, user: str) -> list[str]:
    redis = h.svc.redis
    return [k async for k in redis._r.scan_iter(match=f"{redis.keys.prefix}:*")
            if user in k and not k.endswith(":gen")]


async def test_reset_leaves_nothing_in_redis_or_qdrant(harness: Harness) -> None:
    """After a conversation, a saved note and a queued event, reset leaves no key, no
    queued text, no dedupe key, no active/ready entry, no point and no document."""
    h, user = harness, harness.key()
    h.fake.push(tool_call("archival_memory_insert", content="likes plums", request_heartbeat=True),
                tool_call("send_message", message="ok", request_heartbeat=False))
    await h.say("I like plums")
    await h.svc.writer.flush()
    queued = Event(kind="user_message", user=UserRef("test", "alice", "g1"), text="queued secret",
                   event_id="ev-queued")
    assert await h.svc.redis.dedupe(queued.event_id)
    h.svc.inbox.draining = True  # workers start no step: the event stays queued
    await h.svc.redis.journal(user, queued.to_json(), queued.event_id)  # no worker took it yet
    assert (await h.svc.admin.show(user))["recall_messages"] > 0
    receipt = await h.svc.admin.reset(user)
    assert receipt["archival"] == 1 and receipt["recall"] >= 2 and receipt["queued_events"] == 1
    assert receipt["dedupe_keys"] >= 2
    assert await _keys_of(h, user) == []
    redis = h.svc.redis
    assert user not in await redis.active_users() and user not in await redis.known_users()
    assert user not in await redis._r.lrange(redis.keys.ready, 0, -1)
    assert await redis.dedupe(queued.event_id)  # its dedupe key is gone too
    assert await h.svc.memory.counts(user) == (0, 0)
    assert await h.svc.store.get_doc(user, "core") is None


class GatedMemory(LongTermMemory):
    """Another replica's long-term memory whose writes wait for a gate."""

    def __init__(self, base: LongTermMemory, gate: asyncio.Event) -> None:
        super().__init__(base.store, base.embedder)
        self.gate = gate
        self.entered = asyncio.Event()

    async def write(self, collection: Collection, items: Sequence[MemoryItem]) -> None:
        self.entered.set()
        await self.gate.wait()
        await super().write(collection, items)


async def test_a_stale_recall_batch_is_dropped_after_a_reset(harness: Harness) -> None:
    """A writer on another replica that read a batch before the reset and writes it after
    leaves no recall item behind (recall count stays 0)."""
    h, user = harness, "test:g1:bob"
    redis = h.svc.redis
    msg = Message(role="user", content="stale secret", kind="user_message", ts=time.time())
    token = await redis.acquire(user, 30)
    assert token is not None
    state = json.dumps(h.svc.states.new(user).to_dict())
    await redis.commit(user, token, state, recall=[json.dumps(recall_item(user, msg).__dict__)])
    await redis.release(user, token)
    gate = asyncio.Event()
    other = RecallWriter(redis, GatedMemory(h.svc.memory, gate))
    other.kick(user)
    drain = asyncio.create_task(other.drain_once())
    await asyncio.wait_for(other.memory.entered.wait(), 10)  # type: ignore[attr-defined]
    await h.svc.admin.reset(user)
    gate.set()
    await asyncio.wait_for(drain, 10)
    assert await h.svc.store.count("recall", user) == 0
    assert await redis.recall_pending(user) == 0


async def test_new_messages_after_a_reset_are_kept(harness: Harness) -> None:
    """The tombstone drops only old batches: what the person says after a reset is stored."""
    h = harness
    h.fake.push(tool_call("send_message", message="ok", request_heartbeat=False))
    await h.say("before")
    await h.svc.admin.reset(h.key())
    h.fake.push(tool_call("send_message", message="hello again", request_heartbeat=False))
    await h.say(f"after {uuid.uuid4().hex[:6]}")
    await h.svc.writer.flush()
    assert (await h.svc.memory.counts(h.key()))[0] >= 2
