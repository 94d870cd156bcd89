"""Fast crash recovery: a dead owner's lease runs out in seconds and its users are taken
over without waiting for them to write again; a worker that finds a user locked comes back."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from bot.events import Channel, Event, UserRef
from bot.testing.fake_openai import delay, tool_call
from tests.conftest import make_settings, start_service


def _event(user: str, text: str) -> Event:
    return Event(kind="user_message", user=UserRef("test", user, "g1"), text=text,
                 channel=Channel(), reply_to="chan")


async def _crash(svc: Any) -> None:
    """Die like kill -9: no commit, no release, no cleanup."""
    for t in svc._tasks:
        t.cancel()
    await asyncio.gather(*svc._tasks, return_exceptions=True)
    for t in asyncio.all_tasks():
        if t.get_name().startswith("lease-"):
            t.cancel()
    await svc.store.close()
    await svc.llm.close()
    await svc.redis.close()


async def test_dead_owners_users_are_taken_over_within_seconds(tmp_path: Path, embedder: Any,
                                                              fake_llm: Any) -> None:
    """After a crash mid-step (its lock still in Redis), a restarted replica answers the
    pending messages of every user within the lease plus a scan — not minutes later."""
    settings = make_settings(tmp_path, fake_llm.base_url, lock_lease_s=2.0)
    svc, _ = await start_service(settings, embedder)
    for _ in range(3):
        fake_llm.push(delay(5.0, tool_call("send_message", message="too late", request_heartbeat=False)))
    events = [_event(f"u{i}", f"hello {i}") for i in range(3)]
    for ev in events:
        assert await svc.submit(ev) == "accepted"
    await asyncio.sleep(0.5)  # all three steps wait on the LLM
    assert all([await svc.redis.lock_owner(ev.key) for ev in events])
    await _crash(svc)
    killed = time.monotonic()

    fake_llm.clear()
    svc2, outbox2 = await start_service(settings, embedder)
    try:
        for ev in events:
            await outbox2.wait(ev.event_id, 15)
        recovered = time.monotonic() - killed
        assert recovered < 2.0 + 3.0  # the lease plus a scan and a step
        assert sorted(r.event_id for r in outbox2.replies) == sorted(ev.event_id for ev in events)
    finally:
        await svc2.redis.delete_prefix()
        await svc2.stop()


async def test_a_locked_user_is_looked_at_again(tmp_path: Path, embedder: Any, fake_llm: Any) -> None:
    """A message arriving while another worker holds the user (which then releases without
    re-queueing) is still answered, without the user writing again."""
    settings = make_settings(tmp_path, fake_llm.base_url, lock_lease_s=10.0)
    svc, outbox = await start_service(settings, embedder)
    try:
        ev = _event("bob", "are you there")
        token = await svc.redis.acquire(ev.key, 10.0, owner="other-replica")
        assert token
        fake_llm.push(tool_call("send_message", message="yes", request_heartbeat=False))
        assert await svc.submit(ev) == "accepted"
        await asyncio.sleep(1.0)
        assert outbox.replies == []
        await svc.redis.release(ev.key, token)  # the other owner leaves without re-queueing
        await outbox.wait(ev.event_id, 5)
        assert outbox.texts() == ["yes"]
    finally:
        await svc.redis.delete_prefix()
        await svc.stop()


async def test_lock_token_names_the_instance(tmp_path: Path, embedder: Any, fake_llm: Any) -> None:
    """Leases are fenced by the owner's instance id (visible to operators in Redis)."""
    settings = make_settings(tmp_path, fake_llm.base_url)
    svc, outbox = await start_service(settings, embedder)
    try:
        fake_llm.push(delay(1.0, tool_call("send_message", message="ok", request_heartbeat=False)))
        ev = _event("cy", "hi")
        await svc.submit(ev)
        await asyncio.sleep(0.4)
        owner = await svc.redis.lock_owner(ev.key)
        assert owner is not None and owner.startswith(svc.inbox.instance + ":")
        await outbox.wait(ev.event_id, 10)
    finally:
        await svc.redis.delete_prefix()
        await svc.stop()


async def test_user_marked_queued_by_a_killed_worker_is_queued_again(tmp_path: Path, embedder: Any,
                                                                     fake_llm: Any) -> None:
    """A worker killed between taking a user off the ready list and clearing its "queued"
    mark must not leave the user unqueueable (seen in the chaos run: one user stuck)."""
    settings = make_settings(tmp_path, fake_llm.base_url)
    svc, outbox = await start_service(settings, embedder)
    try:
        ev = _event("dora", "still there?")
        r = svc.redis
        await r._r.sadd(r.keys.queued, ev.key)  # the dead worker's leftover mark
        await r._r.rpush(r.keys.inbox(ev.key), ev.to_json())  # journaled, never listed
        await r._r.sadd(r.keys.active, ev.key)
        fake_llm.push(tool_call("send_message", message="yes", request_heartbeat=False))
        await outbox.wait(ev.event_id, 10)
        assert outbox.texts() == ["yes"]
    finally:
        await svc.redis.delete_prefix()
        await svc.stop()
