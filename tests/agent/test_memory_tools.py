"""archival_memory_insert through the agent: topics supersede, importance is checked, notes are
dated by when the user said them, search output and tool text are never saved as facts, and a
search whose result the agent uses counts as a memory hit."""

from __future__ import annotations

from typing import Any

from bot.testing.fake_openai import call, text, tool_call, tool_calls
from tests.conftest import Harness


def _tool_results(request: dict[str, Any]) -> list[str]:
    return [m["content"] for m in request["messages"] if m["role"] == "tool"]


async def test_a_topic_note_supersedes_the_older_one(harness: Harness) -> None:
    """Saving 'user.city' twice: the second answer says it superseded one note; both are kept."""
    harness.fake.push(tool_call("archival_memory_insert", content="Alice lives in Denver.", topic="User.City",
                                request_heartbeat=False))
    await harness.say("I live in Denver")
    harness.fake.push(tool_call("archival_memory_insert", content="Alice moved to Seattle.", topic="user.city",
                                request_heartbeat=True), text("ok"))
    await harness.say("we moved to Seattle")
    assert "supersedes 1 older note(s) on 'user.city'" in _tool_results(harness.fake.requests[-1])[-1]
    notes = await harness.svc.memory.all_items("archival", harness.key())
    assert len(notes) == 2 and sum(1 for n in notes if n.meta.get("valid_to")) == 1


async def test_a_note_not_yet_written_is_superseded_too(harness: Harness) -> None:
    """Notes are written after the step (by the recall writer): a second note on the topic in
    the same step, or in the next step before the writer ran, still supersedes the first."""
    harness.fake.push(tool_calls([
        call("archival_memory_insert", content="Alice lives in Denver.", topic="user.city", request_heartbeat=False),
        call("archival_memory_insert", content="Alice moved to Seattle.", topic="user.city", request_heartbeat=True),
    ]), text("ok"))
    await harness.say("I lived in Denver, now Seattle")
    assert "supersedes 1 older note(s) on 'user.city'" in _tool_results(harness.fake.requests[1])[-1]
    await harness.svc.writer.flush()
    notes = await harness.svc.memory.all_items("archival", harness.key())
    assert sorted(n.text for n in notes if n.meta.get("valid_to")) == ["Alice lives in Denver."]


async def test_a_queued_note_is_superseded_before_the_writer_runs(harness: Harness) -> None:
    """The previous step's note is still in the user's write queue (archival writes fail, so
    the step's own write is deferred to the writer, which keeps retrying): the next note on
    the topic still supersedes it, and once written only the older one has valid_to."""
    import asyncio

    from bot.errors import StoreError
    memory, release = harness.svc.memory, asyncio.Event()
    write = memory.write

    async def held(collection: Any, items: Any) -> None:
        if collection == "archival" and not release.is_set():
            raise StoreError("vector store unreachable (test)")
        await write(collection, items)

    memory.write = held  # type: ignore[method-assign]
    try:
        harness.fake.push(tool_call("archival_memory_insert", content="Alice works at Acme.",
                                    topic="user.employer", request_heartbeat=False))
        await harness.say("I work at Acme")
        harness.fake.push(tool_call("archival_memory_insert", content="Alice works at Initech now.",
                                    topic="user.employer", request_heartbeat=True), text("ok"))
        await harness.say("I changed jobs, Initech now")
        said = _tool_results(harness.fake.requests[-1])[-1]
    finally:
        release.set()  # the writer's next retry stores both
    assert "supersedes 1 older note(s) on 'user.employer'" in said
    await harness.svc.writer.flush()
    notes = await memory.all_items("archival", harness.key())
    assert sorted(n.text for n in notes if n.meta.get("valid_to")) == ["Alice works at Acme."]
    assert len(notes) == 2


async def test_a_note_is_dated_by_the_user_message(harness: Harness) -> None:
    """The note's time is the user's message's time, not the moment the tool ran."""
    harness.fake.push(tool_call("archival_memory_insert", content="Alice has a cat.", request_heartbeat=False))
    await harness.say("I have a cat")
    state = await harness.state()
    said = [m.ts for m in state.fifo if m.kind == "user_message"][-1]
    assert (await harness.svc.memory.all_items("archival", harness.key()))[0].ts == said


async def test_bad_importance_and_pasted_results_are_refused(harness: Harness) -> None:
    """importance 9 and a pasted search result are errors to the agent; nothing is saved."""
    harness.fake.push(tool_calls([
        call("archival_memory_insert", content="Alice likes tea.", importance=9, request_heartbeat=False),
        call("archival_memory_insert", content="> [2024-05-08 13:56] Alice: I like tea", request_heartbeat=False),
    ]), text("ok"))
    await harness.say("I like tea")
    results = _tool_results(harness.fake.requests[1])
    assert "importance must be 1" in results[0] and "search output" in results[1]
    assert await harness.svc.memory.all_items("archival", harness.key()) == []


async def test_used_search_results_count_as_memory_hits(harness: Harness) -> None:
    """A search whose match the reply repeats is a hit; /metrics and memory show count it."""
    harness.fake.push(tool_call("archival_memory_insert", content="Alice's sister Ana lives in Porto.",
                                request_heartbeat=False))
    await harness.say("my sister Ana lives in Porto")
    harness.fake.push(tool_call("archival_memory_search", query="sister", request_heartbeat=True),
                      tool_call("send_message", message="Ana lives in Porto.", request_heartbeat=False))
    await harness.say("where does my sister live?")
    harness.fake.push(tool_call("archival_memory_search", query="sister", request_heartbeat=True),
                      tool_call("send_message", message="No idea.", request_heartbeat=False))
    await harness.say("and what about her?")
    health = (await harness.svc.admin.show(harness.key()))["memory_health"]
    assert health["searches"] == 2 and health["used"] == 1 and health["hit_rate"] == 0.5
    metrics = harness.svc.metrics.render().decode()
    assert 'membot_memory_searches_total{outcome="used"} 1.0' in metrics
    assert 'membot_memory_searches_total{outcome="ignored"} 1.0' in metrics
