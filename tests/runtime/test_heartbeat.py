"""Timed heartbeats: policy, Redis claims, the scheduler tick against the real service, the
archival_memory_merge tool and login events. Fake clock: ``tick(now)`` and event times."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.agent import tools
from bot.agent.loop import StepResult
from bot.agent.merge import clusters
from bot.agent.toolcontext import ToolContext
from bot.events import Event, UserRef
from bot.messages import ToolCall, stamp
from bot.runtime.heartbeat import Decision, Due, Heartbeats, Policy, decide, first_due, next_day
from bot.stores.redis_store import RedisStore
from bot.testing.fake_openai import delay, echo, last_event, tool_call
from tests.conftest import Harness, make_settings, start_service

IDLE, AWAY = 600.0, 21_600.0
MakeHarness = Callable[..., Awaitable[Harness]]


@pytest.fixture
async def hb(tmp_path: Path, fake_llm: Any, embedder: Any) -> AsyncIterator[MakeHarness]:
    """Start a service with heartbeats on (the APScheduler job far away unless asked)."""
    made: list[Harness] = []

    async def make(**over: Any) -> Harness:
        values: dict[str, Any] = dict(heartbeat_enabled=True, heartbeat_tick_s=3600.0,
                                      heartbeat_idle_s=IDLE, heartbeat_away_s=AWAY)
        values.update(over)
        svc, outbox = await start_service(make_settings(tmp_path, fake_llm.base_url, **values), embedder)
        fake_llm.default = echo
        made.append(Harness(svc, outbox, fake_llm))
        return made[-1]

    yield make
    for h in made:
        await h.svc.stop()
        cleaner = RedisStore(h.svc.settings.redis_url, h.svc.settings.redis_prefix)
        await cleaner.delete_prefix()
        await cleaner.close()


async def run(h: Harness, now: float, beats: Heartbeats | None = None) -> list[Event]:
    """One tick at ``now``; waits until every heartbeat it fired has been processed."""
    beats = beats or h.svc.heartbeats
    assert beats is not None
    fired = await beats.tick(now)
    for ev in fired:
        await h.outbox.wait(ev.event_id)
    return fired


def heartbeat_requests(h: Harness) -> list[dict[str, Any]]:
    return [r for r in h.fake.requests if last_event(r).startswith("[heartbeat")]


async def due(h: Harness, user: str = "alice") -> float | None:
    return await h.svc.redis.scheduled_at(h.key(user))


# --- policy (pure) -------------------------------------------------------------------------------
P = Policy(idle_s=IDLE, away_s=AWAY, stop_after_s=7 * 86_400, daily_budget=6, max_steps=6,
           busy_retry_s=60.0)


def test_policy_decisions() -> None:
    """decide: unknown/stopped drop the schedule; paused/busy/budget postpone; fire caps steps at the budget left."""
    t = 1_700_000_000.0
    assert decide(t, Due(0.0), P) == Decision("unknown", None)
    assert decide(t, Due(t - 7 * 86_400), P) == Decision("stopped", None)
    assert decide(t, Due(t - 1000, paused_until=t + 50), P) == Decision("paused", t + 50)
    assert decide(t, Due(t - 1000, pending=1), P) == Decision("busy", t + 60)
    assert decide(t, Due(t - 1000, spent=6), P) == Decision("budget", max(next_day(t), t + AWAY))
    assert decide(t, Due(t - 1000, spent=4), P) == Decision("fired", t + AWAY, 2)
    assert decide(t, Due(t - 7 * 86_400 + 100), P) == Decision("fired", None, 6)


def test_first_due_respects_pause_and_stop_after() -> None:
    """A reflection is due idle_s after a message, or at the end of a pause, never past stop_after."""
    assert first_due(1000.0, 0.0, P) == 1000.0 + IDLE
    assert first_due(1000.0, 5000.0, P) == 5000.0
    assert first_due(1000.0, 1000.0 + 8 * 86_400, P) is None


def test_clusters_join_transitive_links() -> None:
    """Near-duplicate links form connected groups."""
    groups = clusters([("a", "b"), ("c", "d"), ("b", "c"), ("e", "f")])
    assert sorted(map(sorted, groups)) == [["a", "b", "c", "d"], ["e", "f"]]


# --- the tick against the real service ----------------------------------------------------------
async def test_idle_user_gets_one_reflection_then_the_away_cadence(hb: MakeHarness) -> None:
    """After heartbeat_idle_s exactly one reflection fires; the next is due heartbeat_away_s later."""
    h = await hb()
    ev = await h.say("I'm planning a trip to Porto")
    assert await due(h) == pytest.approx(ev.ts + IDLE)
    assert await h.svc.heartbeats.tick(ev.ts + IDLE - 1) == []  # type: ignore[union-attr]
    fired = await run(h, ev.ts + IDLE + 1)
    assert [(e.kind, e.key) for e in fired] == [("heartbeat", h.key())]
    assert await run(h, ev.ts + IDLE + 2) == []
    assert await due(h) == pytest.approx(ev.ts + IDLE + 1 + AWAY)
    reqs = heartbeat_requests(h)
    assert len(reqs) == 1 and "fold new facts" in last_event(reqs[0])
    assert "archival_memory_merge" in [t["function"]["name"] for t in reqs[0]["tools"]]
    assert h.svc.metrics.registry.get_sample_value("membot_heartbeats_total", {"outcome": "fired"}) == 1


async def test_busy_user_is_not_woken_and_retried_shortly(hb: MakeHarness) -> None:
    """A due heartbeat of a user with a pending/running step is not submitted; it is retried shortly."""
    h = await hb(heartbeat_idle_s=30.0)
    first = await h.say("hello")
    h.fake.push(delay(1.0, tool_call("send_message", message="slow", request_heartbeat=False)))
    second = await h.say("tell me something", wait=False)
    now = first.ts + 31
    assert await h.svc.heartbeats.tick(now) == []  # type: ignore[union-attr]
    assert await due(h) == pytest.approx(now + 30.0)
    await h.outbox.wait(second.event_id)
    assert await due(h) == pytest.approx(second.ts + 30.0)  # the user's step rescheduled it
    assert heartbeat_requests(h) == []


async def test_heartbeat_queued_behind_a_user_turn_runs_after_it(hb: MakeHarness) -> None:
    """A heartbeat submitted while a user step runs waits for it (same queue and lock) and sees its result."""
    h = await hb()
    h.fake.push(delay(1.0, tool_call("core_memory_append", label="human", content="Has a cat",
                                     request_heartbeat=False)))
    ev = await h.say("I have a cat", wait=False)
    await asyncio.sleep(0.3)  # the user's step is running now
    assert await h.svc.admin.heartbeat_now(h.key()) == "accepted"
    await h.outbox.wait(ev.event_id)
    for _ in range(300):
        if len(h.outbox.completed_ids) == 2:
            break
        await asyncio.sleep(0.05)
    assert h.outbox.completed_ids[0] == ev.event_id and len(h.outbox.completed_ids) == 2
    [beat] = heartbeat_requests(h)
    assert "Has a cat" in beat["messages"][0]["content"]  # committed core memory in view


async def _known_user(h: Harness, name: str, ts: float) -> str:
    """Register a user the way a committed user step does (the on_step hook)."""
    assert h.svc.heartbeats is not None
    ref = UserRef("test", name, "g1")
    state = h.svc.states.new(ref.key)
    await h.svc.heartbeats.on_step(Event(kind="user_message", user=ref, reply_to="chan", ts=ts),
                                   state, StepResult(), 0.0)
    return ref.key


async def test_two_schedulers_fire_each_due_heartbeat_once(hb: MakeHarness) -> None:
    """Two Heartbeats ticking concurrently over one Redis fire each due heartbeat exactly once."""
    h = await hb()
    ts = time.time() - IDLE - 5
    keys = {await _known_user(h, f"u{i}", ts) for i in range(12)}
    other = Heartbeats(h.svc)
    a, b = await asyncio.gather(h.svc.heartbeats.tick(), other.tick())  # type: ignore[union-attr]
    fired = [e.key for e in a + b]
    assert sorted(fired) == sorted(keys)
    for ev in a + b:
        await h.outbox.wait(ev.event_id)
    assert len(heartbeat_requests(h)) == 12


async def test_two_redis_clients_never_claim_the_same_member(settings: Any, redis_store: RedisStore) -> None:
    """claim_due is atomic: concurrent claims from two connections split the due set without overlap."""
    other = RedisStore(settings.redis_url, settings.redis_prefix)
    try:
        for i in range(300):
            await redis_store.schedule(f"u{i}", 1000.0 + i)
        await redis_store.schedule("later", 5000.0)
        claims = await asyncio.gather(*[c.claim_due(2000.0, 7) for c in [redis_store, other] * 30])
        flat = [m for batch in claims for m in batch]
        assert len(flat) == len(set(flat)) == 300
        assert await redis_store.scheduled_at("later") == 5000.0
    finally:
        await other.close()


async def test_budget_caps_calls_per_heartbeat_and_per_day(hb: MakeHarness) -> None:
    """A heartbeat's chain stops at the daily budget left; a spent budget skips heartbeats until the next UTC day."""
    h = await hb(heartbeat_daily_budget=3, heartbeat_away_s=60.0)
    ev = await h.say("hi")
    for n in range(3):  # memory edits: the next heartbeat has something to look at again
        h.fake.push(tool_call("core_memory_append", label="human", content=f"plan {n}", request_heartbeat=True))
    day1 = next_day(ev.ts) + 3600  # 01:00 UTC tomorrow: the two ticks share a budget day
    before = len(h.fake.requests)
    assert len(await run(h, day1)) == 1
    assert len(h.fake.requests) - before == 3  # capped at the budget, below max_chain_steps (6)
    assert await h.svc.heartbeats.tick(day1 + 61) == []  # type: ignore[union-attr]
    assert await due(h) == pytest.approx(next_day(day1))
    assert len(h.fake.requests) - before == 3
    assert len(await run(h, next_day(day1) + 1)) == 1  # a new day, a new budget


async def test_paused_user_is_skipped_until_the_pause_ends(hb: MakeHarness) -> None:
    """pause_heartbeats moves the next heartbeat to the pause's end; a due one during the pause is skipped."""
    h = await hb()
    h.fake.push(tool_call("pause_heartbeats", minutes=120, request_heartbeat=False))
    ev = await h.say("don't bother me for two hours")
    until = (await h.state()).paused_until
    assert until > ev.ts + IDLE and await due(h) == pytest.approx(until)
    await h.svc.redis.schedule(h.key(), ev.ts + IDLE)  # e.g. scheduled before the pause
    assert await h.svc.heartbeats.tick(ev.ts + IDLE + 1) == []  # type: ignore[union-attr]
    assert await due(h) == pytest.approx(until)
    assert heartbeat_requests(h) == []
    assert len(await run(h, until + 1)) == 1


async def test_cadence_stops_after_stop_after(hb: MakeHarness) -> None:
    """Heartbeats come every away_s after the idle one and end stop_after_s after the last message."""
    h = await hb(heartbeat_idle_s=100.0, heartbeat_away_s=1000.0, heartbeat_stop_after_s=2500.0)
    ev = await h.say("bye for now")
    offsets = []
    while (at := await due(h)) is not None:  # each reflection edits memory, so the next one runs
        h.fake.push(tool_call("core_memory_append", label="human", content=f"at {at}", request_heartbeat=False))
        assert len(await run(h, at)) == 1
        offsets.append(at - ev.ts)
    assert offsets == pytest.approx([100.0, 1100.0, 2100.0])
    assert await h.svc.heartbeats.tick(ev.ts + 2600) == []  # type: ignore[union-attr]


async def test_idle_user_gets_no_llm_call_until_they_speak(hb: MakeHarness) -> None:
    """A reflection that changed nothing, with no message since: the next heartbeat makes no LLM
    call and ends the cadence; the user's next message starts it again."""
    h = await hb(heartbeat_idle_s=100.0, heartbeat_away_s=1000.0, heartbeat_stop_after_s=5000.0)
    ev = await h.say("bye for now")
    assert len(await run(h, ev.ts + 100)) == 1
    before = len(h.fake.requests)
    assert await h.svc.heartbeats.tick(ev.ts + 1100) == []  # type: ignore[union-attr]
    assert len(h.fake.requests) == before and await due(h) is None
    later = await h.say("I'm back")
    assert await due(h) == pytest.approx(later.ts + 100)


async def test_a_heartbeat_reorganizes_archival_notes_first(hb: MakeHarness) -> None:
    """A fired heartbeat merges exact duplicate notes before reflecting (no LLM call needed)."""
    h = await hb()
    ev = await h.say("hello")
    for _ in range(2):
        await h.svc.memory.insert_archival(h.key(), "Alice has a beagle named Rex.")
    assert len(await run(h, ev.ts + IDLE + 1)) == 1
    assert len(await h.svc.memory.all_items("archival", h.key())) == 1


async def test_reflection_edit_is_visible_in_memory_show(hb: MakeHarness) -> None:
    """A reflection's core-memory edit shows in admin.show (the /memory view) with the next heartbeat."""
    h = await hb()
    ev = await h.say("We're going to Porto in May")
    h.fake.push(tool_call("core_memory_append", label="human", content="Trip to Porto in May",
                          request_heartbeat=False))
    await run(h, ev.ts + IDLE + 1)
    shown = await h.svc.admin.show(h.key())
    assert "Trip to Porto in May" in shown["human"]
    assert shown["next_heartbeat"] == stamp(ev.ts + IDLE + 1 + AWAY)


@pytest.mark.parametrize("proactive", [False, True])
async def test_heartbeat_message_delivered_only_when_proactive(hb: MakeHarness, proactive: bool) -> None:
    """A heartbeat's send_message stays private by default and, when allowed, goes to the
    person's DM, never to the public channel they last wrote in (What was seen 3)."""
    h = await hb(heartbeat_proactive=proactive)
    ev = await h.say("hi", where="channel")
    h.fake.push(tool_call("send_message", message="Thinking of you", request_heartbeat=False))
    [beat] = await run(h, ev.ts + IDLE + 1)
    sent = [r for r in h.outbox.replies if r.event_id == beat.event_id]
    if not proactive:
        assert sent == []
        return
    assert [(r.text, r.reply_to, r.user) for r in sent] == [("Thinking of you", "", ev.user)]


async def test_linked_identity_schedules_under_the_memory_key(hb: MakeHarness) -> None:
    """With identity links the due-set member is the shared memory key; replies route to the identity last used."""
    h = await hb(heartbeat_proactive=True)
    await h.svc.admin.link(h.key("alice2"), h.key("alice"))
    ev = await h.say("hello from my other account", user="alice2")
    assert await due(h, "alice") == pytest.approx(ev.ts + IDLE)
    assert await due(h, "alice2") is None
    h.fake.push(tool_call("send_message", message="ping", request_heartbeat=False))
    [beat] = await run(h, ev.ts + IDLE + 1)
    assert beat.key == h.key("alice") and beat.user == ev.user


async def test_schedule_survives_a_restart(hb: MakeHarness) -> None:
    """The due set lives in Redis: a restarted service fires the heartbeat scheduled before the restart."""
    h = await hb()
    ev = await h.say("hello")
    await h.svc.stop()
    h.svc, h.outbox = await start_service(h.svc.settings, h.svc.embedder)
    fired = await run(h, ev.ts + IDLE + 1)
    assert [e.key for e in fired] == [h.key()]


async def test_scheduler_job_ticks_in_real_time(hb: MakeHarness) -> None:
    """The APScheduler interval job fires a due heartbeat by itself, once, and nothing after stop()."""
    h = await hb(heartbeat_tick_s=0.1, heartbeat_idle_s=0.3)
    ev = await h.say("hi")
    for _ in range(100):
        if heartbeat_requests(h):
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    assert len(heartbeat_requests(h)) == 1
    await h.svc.heartbeats.stop()  # type: ignore[union-attr]
    await h.svc.redis.schedule(h.key(), ev.ts)
    await asyncio.sleep(0.4)
    assert len(heartbeat_requests(h)) == 1 and await due(h) == ev.ts


# --- archival_memory_merge ----------------------------------------------------------------------
async def _merge(h: Harness, user: str = "alice", **args: str) -> tools.ToolOutcome:
    state = await h.state(user)
    ctx = ToolContext(state=state, memory=h.svc.memory, settings=h.svc.settings,
                            event=Event(kind="heartbeat", user=UserRef("test", user, "g1")))
    out = await tools.execute(ToolCall("c1", "archival_memory_merge", json.dumps(args)), ctx)
    for op in ctx.staged:  # what the step's commit does with the tool's staged writes
        await h.svc.memory.apply(op)
    await h.svc.states.save(state)
    return out


async def test_merge_lists_and_merges_near_duplicates(harness: Harness) -> None:
    """Without args the tool lists near-duplicate groups with short ids; with ids+content it replaces them by one note."""
    mem, key = harness.svc.memory, harness.key()
    dog_a = await mem.insert_archival(key, "Alice has a beagle named Rex.")
    dog_b = await mem.insert_archival(key, "Alice has a beagle called Rex.")
    await mem.insert_archival(key, "Alice has a cat named Miso.")
    listed = await _merge(harness)
    assert listed.ok and f"ids={dog_a[:8]},{dog_b[:8]}" in listed.text and "Miso" not in listed.text
    done = await _merge(harness, ids=f"{dog_a[:8]}, {dog_b[:8]}", content="Alice has a beagle, Rex.")
    assert done.ok and done.text == "Merged 2 notes into one."
    texts = sorted(i.text for i in await mem.by_time("archival", key))
    assert texts == ["Alice has a beagle, Rex.", "Alice has a cat named Miso."]
    assert (await _merge(harness)).text == "No near-duplicate notes."


async def test_merge_refuses_bad_foreign_and_unrelated_ids(harness: Harness) -> None:
    """The merge tool refuses unknown ids, other users' ids and notes that are not near-duplicates; nothing changes."""
    mem, key = harness.svc.memory, harness.key()
    dog_a = await mem.insert_archival(key, "Alice has a beagle named Rex.")
    dog_b = await mem.insert_archival(key, "Alice has a beagle called Rex.")
    cat = await mem.insert_archival(key, "Alice has a cat named Miso.")
    bobs = await mem.insert_archival(harness.key("bob"), "Alice has a beagle named Rex.")
    cases = {f"deadbeef,{dog_a[:8]}": "not a listed near-duplicate",
             f"{bobs[:8]},{dog_a[:8]}": "not a listed near-duplicate",
             f"{bobs},{dog_a}": "not a listed near-duplicate",
             f"{cat[:8]},{dog_a[:8]}": "not a listed near-duplicate",
             dog_a[:8]: "at least two ids"}
    for ids, error in cases.items():
        out = await _merge(harness, ids=ids, content="merged")
        assert not out.ok and error in out.text, (ids, out.text)
    out = await _merge(harness, ids=f"{dog_a[:8]},{dog_b[:8]}", content=" ")
    assert not out.ok and "content" in out.text
    assert await mem.store.count("archival", key) == 3
    assert await mem.store.count("archival", harness.key("bob")) == 1


# --- login events -----------------------------------------------------------------------------------
async def test_login_event_tells_the_agent_how_long_the_user_was_away(harness: Harness) -> None:
    """A user message after login_gap_s is preceded by a [login] line saying how long the person was away."""
    harness.fake.default = echo
    long_ago = time.time() - 3 * 86_400 - 7200
    first = Event(kind="user_message", user=UserRef("test", "alice", "g1"), text="hi", ts=long_ago,
                  reply_to="chan")
    await harness.svc.submit(first)
    await harness.outbox.wait(first.event_id)
    await harness.say("I'm back")
    await harness.say("and still here")
    logins = [[m["content"] for m in r["messages"] if (m["content"] or "").startswith("[login")]
              for r in harness.fake.requests]
    assert logins[0] == []
    assert len(logins[1]) == 1 and "back after 3 days away" in logins[1][0]
    assert logins[2] == logins[1]  # no new login for a message right after
