"""Nothing is lost: Redis flushed mid-conversation, a crash mid-step, restarts."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from bot.events import Channel, Event, UserRef
from bot.stores.redis_store import RedisStore
from bot.testing.fake_openai import call, delay, text, tool_call, tool_calls
from tests.conftest import Harness, start_service


async def test_redis_flush_loses_nothing(harness: Harness) -> None:
    """After Redis loses everything, core memory, summary and recent messages come back."""
    harness.fake.push(tool_calls([
        call("core_memory_append", label="human", content="Name: Alice. Cat: Miso.", request_heartbeat=False),
        call("send_message", message="Hi Alice", request_heartbeat=False),
    ]))
    await harness.say("I'm Alice and my cat is Miso")
    harness.fake.push(tool_call("send_message", message="Got it", request_heartbeat=False))
    await harness.say("I live in Porto")
    await harness.svc.writer.flush()
    before = await harness.state()

    await harness.svc.redis.delete_prefix()  # Redis loses everything

    after = await harness.state()
    assert after.human.value == "Name: Alice. Cat: Miso."
    assert [m.content for m in after.fifo] == [m.content for m in before.fifo]
    assert after.n_recall == before.n_recall
    harness.fake.push(tool_call("send_message", message="Porto!", request_heartbeat=False))
    await harness.say("where do I live?")
    prompt = harness.fake.requests[-1]["messages"]
    assert any("I live in Porto" in str(m.get("content")) for m in prompt)
    assert "Cat: Miso" in prompt[0]["content"]


async def test_crash_mid_step_is_replayed_exactly_once(settings: Any, embedder: Any, fake_llm: Any) -> None:
    """A process dying mid-step leaves the event journaled; the next process answers it once."""
    svc, outbox = await start_service(settings, embedder)
    fake_llm.push(delay(3.0, tool_call("send_message", message="too late", request_heartbeat=False)))
    ev = Event(kind="user_message", user=UserRef("test", "carol", "g1"), text="remember me",
               channel=Channel(), reply_to="chan")
    assert await svc.submit(ev) == "accepted"
    await asyncio.sleep(0.5)  # the step is now waiting on the LLM
    for t in svc._tasks:  # crash: no commit, no cleanup
        t.cancel()
    await asyncio.gather(*svc._tasks, return_exceptions=True)
    await svc.store.close()
    await svc.llm.close()
    key = ev.key
    assert await svc.redis.inbox_len(key) == 1  # still journaled
    await svc.redis._r.delete(svc.redis.keys.lock(key))  # the dead worker's lease expires
    await svc.redis.close()
    assert outbox.replies == []

    fake_llm.clear()
    fake_llm.push(tool_call("send_message", message="hello carol", request_heartbeat=False))
    svc2, outbox2 = await start_service(settings, embedder)
    try:
        await outbox2.wait(ev.event_id, 20)
        assert outbox2.texts() == ["hello carol"]
        state = await svc2.states.load(key)
        assert sum("remember me" in m.content for m in state.fifo) == 1
        assert await svc2.redis.inbox_len(key) == 0
        await asyncio.sleep(0.3)
        assert outbox2.texts() == ["hello carol"]  # not answered twice
    finally:
        await svc2.redis.delete_prefix()
        await svc2.stop()


async def test_replies_committed_but_undelivered_are_sent_after_restart(harness: Harness) -> None:
    """Replies queued by a commit are delivered by the next worker that takes the user."""
    from bot.events import Reply
    key = harness.key("dave")
    user = UserRef("test", "dave", "g1")
    token = await harness.svc.redis.acquire(key, 10)
    assert token
    state = harness.svc.states.new(key)
    import json
    ok = await harness.svc.redis.commit(key, token, json.dumps(state.to_dict()),
                                        replies=[Reply(user=user, text="queued").to_json()])
    assert ok
    await harness.svc.redis.release(key, token)
    await harness.svc.inbox.process_user(key)
    assert harness.outbox.texts() == ["queued"]
    await harness.svc.inbox.process_user(key)
    assert harness.outbox.texts() == ["queued"]


async def test_commit_refused_without_the_lock(redis_store: RedisStore) -> None:
    """A worker that lost its lock cannot overwrite state."""
    token = await redis_store.acquire("u1", 10)
    assert token
    assert not await redis_store.commit("u1", "not-the-token", "{}")
    assert await redis_store.get_state("u1") is None
    assert await redis_store.commit("u1", token, "{}")


async def test_per_user_steps_are_serialized(harness: Harness) -> None:
    """Two messages of one user never run concurrently; the second sees the first's result."""
    harness.fake.push(
        delay(0.5, tool_call("core_memory_append", label="human", content="first", request_heartbeat=False)),
        tool_call("core_memory_append", label="human", content="second", request_heartbeat=False),
    )
    a = await harness.say("one", wait=False)
    b = await harness.say("two", wait=False)
    await harness.outbox.wait(a.event_id)
    await harness.outbox.wait(b.event_id)
    assert (await harness.state()).human.value == "first\nsecond"
    assert "first" in harness.fake.requests[1]["messages"][0]["content"]


async def test_many_users_run_in_parallel(harness: Harness) -> None:
    """Slow steps of different users overlap instead of queueing behind each other."""
    for _ in range(4):
        harness.fake.push(delay(0.6, text("ok")))
    loop = asyncio.get_running_loop()
    start = loop.time()
    events = [await harness.say("hi", user=f"u{i}", wait=False) for i in range(4)]
    for ev in events:
        await harness.outbox.wait(ev.event_id)
    assert loop.time() - start < 2.0


async def test_restart_keeps_memory(tmp_path: Path, settings: Any, embedder: Any, fake_llm: Any) -> None:
    """Stopping and starting the service keeps core memory and recall (embedded Qdrant on disk)."""
    svc, outbox = await start_service(settings, embedder)
    h = Harness(svc, outbox, fake_llm)
    fake_llm.push(tool_call("core_memory_append", label="human", content="Likes jazz", request_heartbeat=False))
    await h.say("I like jazz")
    await svc.stop()
    svc2, outbox2 = await start_service(settings, embedder)
    try:
        await svc2.redis.delete_prefix()
        state = await svc2.states.load(h.key())
        assert state.human.value == "Likes jazz"
        assert any("I like jazz" in m.content for m in state.fifo)
    finally:
        await svc2.redis.delete_prefix()
        await svc2.stop()


async def test_failed_journal_lets_the_platform_retry_through(harness: Harness) -> None:
    """If journaling fails after the dedupe mark, the retry of that event is not dropped."""
    from bot.errors import StoreError

    svc = harness.svc
    ev = Event(kind="user_message", user=UserRef("test", "fay", "g1"), text="hello",
               channel=Channel(), reply_to="chan")
    inbox_key = svc.redis.keys.inbox(ev.key)
    await svc.redis._r.set(inbox_key, "not a list")  # a real Redis error (WRONGTYPE) on RPUSH
    try:
        await svc.submit(ev)
    except StoreError:
        pass
    else:
        raise AssertionError("submit should report the journal failure")
    await svc.redis._r.delete(inbox_key)
    harness.fake.push(tool_call("send_message", message="got it", request_heartbeat=False))
    waiter = harness.outbox.expect(ev.event_id)
    assert await svc.submit(ev) == "accepted"
    await asyncio.wait_for(waiter.wait(), 20)
    assert harness.outbox.texts(ev.event_id) == ["got it"]
