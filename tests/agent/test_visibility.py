"""Visibility-aware memory: nothing said in a DM or in another server reaches a prompt,
search result or reply produced for a channel event (What was seen 4); the person's DM
sees everything of theirs."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from bot.events import Channel, Event, UserRef
from bot.testing.fake_openai import text, tool_call
from tests.conftest import Harness

DM_CANARY = "canary-dm-5821"
A_CANARY = "canary-guildA-7730"


def event(text_: str, where: str = "dm", server: str = "") -> Event:
    channel = Channel(where=where, name="general" if where != "dm" else "", id="c1",  # type: ignore[arg-type]
                      server=server)
    return Event(kind="user_message", user=UserRef("test", "alice", "-"), text=text_,
                 channel=channel, reply_to="chan", ts=time.time())


async def run(h: Harness, ev: Event) -> list[dict[str, Any]]:
    """Submit ``ev``, wait for its step, and return the LLM requests it made."""
    before = len(h.fake.requests)
    waiter = h.outbox.expect(ev.event_id)
    assert await h.svc.submit(ev) == "accepted"
    await asyncio.wait_for(waiter.wait(), 30)
    await h.svc.writer.flush()
    return h.fake.requests[before:]


def remember(fact: str) -> list[Any]:
    """A model turn sequence that puts ``fact`` in core, archival and recall."""
    return [tool_call("core_memory_append", label="human", content=f"Fact: {fact}",
                      request_heartbeat=True),
            tool_call("archival_memory_insert", content=f"Note: {fact}", request_heartbeat=True),
            tool_call("send_message", message="Noted.", request_heartbeat=False)]


def probe(query: str) -> list[Any]:
    """A model turn sequence that searches every store for ``query`` and answers."""
    day = time.strftime("%Y-%m-%d", time.gmtime())
    return [tool_call("conversation_search", query=query, request_heartbeat=True),
            tool_call("archival_memory_search", query=query, request_heartbeat=True),
            tool_call("conversation_search_date", start_date=day, end_date=day,
                      request_heartbeat=True),
            tool_call("archival_memory_merge", request_heartbeat=True),
            tool_call("send_message", message="Here is what I know.", request_heartbeat=False)]


def seen(requests: list[dict[str, Any]]) -> str:
    return json.dumps(requests)


async def test_dm_fact_never_reaches_a_channel_prompt(harness: Harness) -> None:
    """A fact told in a DM (saved to core, archival, recall) is absent from every prompt
    and tool result of a later channel event, while a DM prompt still has it."""
    harness.fake.push(*remember(DM_CANARY))
    await run(harness, event(f"my secret is {DM_CANARY}"))
    harness.fake.push(*probe("secret canary dm 5821"))  # its words, not the canary itself
    channel = await run(harness, event("what do you know about me?", "channel", "A"))
    assert len(channel) == 5 and DM_CANARY not in seen(channel)
    results = [m["content"] for m in channel[-1]["messages"] if m["role"] == "tool"]
    assert results[:2] == ["No past messages found.", "No archival notes found."], results
    assert all(DM_CANARY not in r.text for r in harness.outbox.replies)
    harness.fake.push(tool_call("send_message", message="hi", request_heartbeat=False))
    dm = await run(harness, event("and in private?"))
    assert DM_CANARY in dm[0]["messages"][0]["content"]  # core memory, in the DM view


async def test_other_servers_stay_out_of_a_channel(harness: Harness) -> None:
    """What was said in server A is visible in A's channels and the DM, never in server B."""
    harness.fake.push(*remember(A_CANARY))
    await run(harness, event(f"in A I say {A_CANARY}", "channel", "A"))
    harness.fake.push(*probe("canary guildA 7730"))
    in_b = await run(harness, event("hello from B", "channel", "B"))
    assert A_CANARY not in seen(in_b)
    harness.fake.push(*probe("canary guildA 7730"))
    in_a = await run(harness, event("hello again in A", "channel", "A"))
    assert A_CANARY in seen(in_a[0]["messages"])  # core line and FIFO from A
    tool_results = [m["content"] for m in in_a[-1]["messages"] if m["role"] == "tool"]
    assert any(A_CANARY in t for t in tool_results)


async def test_summary_of_dm_stays_out_of_channels(harness: Harness) -> None:
    """After eviction, a channel prompt gets its server's own summary, never the DM one."""
    harness.fake.push(tool_call("send_message", message="ok", request_heartbeat=False))
    await run(harness, event(f"private: {DM_CANARY}"))
    harness.fake.push(tool_call("send_message", message="ok", request_heartbeat=False))
    await run(harness, event("public hello", "channel", "A"))
    harness.fake.push(tool_call("send_message", message="ok", request_heartbeat=False))
    await run(harness, event("last words", "channel", "A"))
    harness.fake.push(text(f"Alice told a secret {DM_CANARY} and said hello in public."),
                      text("Alice said hello in server A."))
    assert await harness.svc.admin.summarize("test:-:alice") > 0
    state = await harness.svc.states.load("test:-:alice")
    assert DM_CANARY in state.summary and state.summaries == {"g:test:A": "Alice said hello in server A."}
    harness.fake.push(tool_call("send_message", message="ok", request_heartbeat=False))
    channel = await run(harness, event("anything new?", "channel", "A"))
    assert DM_CANARY not in seen(channel) and "Alice said hello in server A." in seen(channel)


async def test_channel_edit_cannot_touch_or_probe_dm_lines(harness: Harness) -> None:
    """core_memory_replace in a channel sees only that server's lines: a DM line is
    'not in the block' there and stays intact."""
    harness.fake.push(*remember(DM_CANARY))
    await run(harness, event(f"secret {DM_CANARY}"))
    harness.fake.push(tool_call("core_memory_replace", label="human", old_content=DM_CANARY,
                                new_content="gone", request_heartbeat=True),
                      tool_call("send_message", message="ok", request_heartbeat=False))
    channel = await run(harness, event("hi", "channel", "A"))
    result = [m for m in channel[-1]["messages"] if m["role"] == "tool"][-1]["content"]
    assert "is not in the human block" in result
    state = await harness.svc.states.load("test:-:alice")
    assert f"Fact: {DM_CANARY}" in state.human.value
