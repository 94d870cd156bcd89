"""The agent loop end to end: fake LLM over HTTP, real Redis, embedded Qdrant, fastembed."""

from __future__ import annotations

import json
from typing import Any

from bot.testing.fake_openai import (
    call,
    delay,
    echo,
    raw_arguments,
    text,
    tool_call,
    tool_calls,
)
from tests.conftest import Harness


def _tool_results(request: dict[str, Any]) -> list[str]:
    return [m["content"] for m in request["messages"] if m["role"] == "tool"]


async def test_send_message_reaches_the_user(harness: Harness) -> None:
    """A send_message call is delivered as a reply to the event's reply target."""
    harness.fake.push(tool_call("send_message", message="Hello Alice!", request_heartbeat=False))
    ev = await harness.say("hi there")
    assert harness.outbox.texts(ev.event_id) == ["Hello Alice!"]
    assert harness.outbox.replies[0].reply_to == "chan"
    state = await harness.state()
    assert [m.kind for m in state.fifo] == ["user_message", "assistant", "tool_result"]


async def test_plain_text_answer_is_delivered(harness: Harness) -> None:
    """A model answering in plain text (no tool call) still reaches the user."""
    harness.fake.push(text("Just text."))
    ev = await harness.say("hello")
    assert harness.outbox.texts(ev.event_id) == ["Just text."]


async def test_several_tool_calls_run_in_order(harness: Harness) -> None:
    """Several tool calls in one response run in order; core memory is edited."""
    harness.fake.push(tool_calls([
        call("core_memory_append", label="human", content="Name: Alice", request_heartbeat=False),
        call("send_message", message="Nice to meet you", request_heartbeat=False),
    ]))
    await harness.say("I'm Alice")
    state = await harness.state()
    assert state.human.value == "Name: Alice"
    assert [m.name for m in state.fifo if m.role == "tool"] == ["core_memory_append", "send_message"]


async def test_invalid_json_arguments_go_back_to_the_model(harness: Harness) -> None:
    """Malformed arguments fail the call, force a heartbeat and show the error to the model."""
    harness.fake.push(raw_arguments("send_message", "{not json"),
                      tool_call("send_message", message="fixed", request_heartbeat=False))
    ev = await harness.say("hi")
    assert harness.outbox.texts(ev.event_id) == ["fixed"]
    second = harness.fake.requests[1]
    assert any("not valid JSON" in r for r in _tool_results(second))


async def test_unknown_tool_is_reported(harness: Harness) -> None:
    """An unknown tool name becomes a failed tool result listing the available tools."""
    harness.fake.push(tool_call("launch_rocket", request_heartbeat=False), text("sorry"))
    await harness.say("hi")
    results = _tool_results(harness.fake.requests[1])
    assert "unknown tool 'launch_rocket'" in results[0] and "send_message" in results[0]


async def test_core_memory_replace_failures_are_clear(harness: Harness) -> None:
    """Replace fails clearly on missing text, ambiguous text and the block limit; nothing changes."""
    harness.fake.push(
        tool_calls([
            call("core_memory_append", label="human", content="likes tea. likes tea.", request_heartbeat=False),
            call("core_memory_replace", label="human", old_content="coffee", new_content="x", request_heartbeat=False),
            call("core_memory_replace", label="human", old_content="likes tea", new_content="y", request_heartbeat=False),
            call("core_memory_replace", label="human", old_content="likes tea. likes", new_content="z" * 5000, request_heartbeat=False),
        ]),
        text("done"),
    )
    await harness.say("hi")
    results = _tool_results(harness.fake.requests[1])
    assert results[0] == "OK"
    assert "is not in the human block" in results[1]
    assert "occurs 2 times" in results[2]
    assert "over its limit" in results[3]
    assert (await harness.state()).human.value == "likes tea. likes tea."


async def test_argument_size_and_type_are_validated(harness: Harness) -> None:
    """Oversized strings and wrong types are rejected before the tool runs."""
    harness.fake.push(
        tool_calls([
            call("archival_memory_insert", content="x" * 9000, request_heartbeat=False),
            call("conversation_search", query="x", page="two", request_heartbeat=False),
            call("core_memory_append", label="boss", content="x", request_heartbeat=False),
        ]),
        text("ok"),
    )
    await harness.say("hi")
    results = _tool_results(harness.fake.requests[1])
    assert "limit is 8000" in results[0]
    assert "'page' must be a integer" in results[1]
    assert "must be one of persona, human" in results[2]


async def test_conversation_search_finds_an_earlier_message(harness: Harness) -> None:
    """conversation_search returns an earlier message by meaning, with its time and speaker."""
    harness.fake.push(tool_call("send_message", message="noted", request_heartbeat=False))
    await harness.say("My sister Priya moved to Lisbon last spring.")
    await harness.svc.writer.flush()
    harness.fake.push(tool_call("conversation_search", query="where does my sister live", request_heartbeat=True),
                      tool_call("send_message", message="Lisbon", request_heartbeat=False))
    await harness.say("Where did my sister move?")
    result = _tool_results(harness.fake.requests[-1])[-1]
    assert "Priya moved to Lisbon" in result and "user:" in result


async def test_archival_insert_then_search(harness: Harness) -> None:
    """Archival notes are saved and found again by a paraphrased query."""
    harness.fake.push(tool_call("archival_memory_insert", content="Alice is allergic to peanuts.", request_heartbeat=False))
    await harness.say("note this")
    harness.fake.push(tool_call("archival_memory_search", query="food allergy", request_heartbeat=True), text("ok"))
    await harness.say("what can't I eat?")
    assert "allergic to peanuts" in _tool_results(harness.fake.requests[-1])[-1]
    assert (await harness.state()).n_archival == 1


async def test_conversation_search_date_lists_a_day(harness: Harness) -> None:
    """conversation_search_date lists the messages of a date range; bad dates fail clearly."""
    harness.fake.push(tool_call("send_message", message="hi", request_heartbeat=False))
    await harness.say("a message for today")
    await harness.svc.writer.flush()
    from datetime import UTC, datetime
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    harness.fake.push(tool_calls([
        call("conversation_search_date", start_date=today, end_date=today, request_heartbeat=False),
        call("conversation_search_date", start_date="yesterday", end_date=today, request_heartbeat=False),
    ]), text("ok"))
    await harness.say("what did I say today?")
    results = _tool_results(harness.fake.requests[-1])[-2:]
    assert "a message for today" in results[0]
    assert "start_date must be a date" in results[1]


async def test_pause_heartbeats_sets_the_pause(harness: Harness) -> None:
    """pause_heartbeats records when timed heartbeats may resume."""
    harness.fake.push(tool_call("pause_heartbeats", minutes=60, request_heartbeat=False))
    ev = await harness.say("leave me alone for an hour")
    state = await harness.state()
    assert state.paused_until >= ev.ts + 3500


async def test_chaining_is_capped_and_the_agent_is_told(harness: Harness) -> None:
    """A model that always asks for another step stops at the cap, and an alert says so."""
    cap = harness.svc.settings.max_chain_steps
    for _ in range(cap):
        harness.fake.push(tool_call("archival_memory_search", query="x", request_heartbeat=True))
    await harness.say("loop forever")
    assert len(harness.fake.requests) == cap
    state = await harness.state()
    assert state.fifo[-1].kind == "system_alert" and "Step limit reached" in state.fifo[-1].content


async def test_failed_tool_forces_a_heartbeat(harness: Harness) -> None:
    """A failing call without request_heartbeat still gets the model another step."""
    harness.fake.push(tool_call("core_memory_replace", label="human", old_content="nope", new_content="x",
                                request_heartbeat=False), text("ok"))
    await harness.say("hi")
    assert len(harness.fake.requests) == 2


async def test_timeout_gives_a_notice_and_keeps_memory(harness: Harness, ) -> None:
    """An LLM timeout sends a short notice; core memory is unchanged and the FIFO keeps only
    the person's message followed by what they were told (nothing of the abandoned chain)."""
    harness.fake.push(tool_call("send_message", message="first", request_heartbeat=False))
    await harness.say("first")
    before = (await harness.state()).to_dict()
    harness.fake.push(delay(8.0), delay(8.0))
    ev = await harness.say("second")
    assert harness.outbox.texts(ev.event_id, kind="notice")
    after = (await harness.state()).to_dict()
    assert after["human"] == before["human"]
    assert after["fifo"][:-2] == before["fifo"]
    kept, alert = after["fifo"][-2:]
    assert kept["kind"] == "user_message" and kept["content"].endswith("second")
    assert alert["kind"] == "system_alert" and "timeout" in alert["content"]


async def test_duplicate_event_is_answered_once(harness: Harness) -> None:
    """A platform retry with the same event id is dropped."""
    harness.fake.push(tool_call("send_message", message="once", request_heartbeat=False))
    ev = await harness.say("hi", event_id="evt-1")
    again = await harness.svc.submit(ev)
    assert again == "duplicate"
    assert harness.outbox.texts() == ["once"]


async def test_users_never_see_each_others_memory(harness: Harness) -> None:
    """Two users: one's core and archival memory never reach the other's prompt or searches."""
    harness.fake.push(tool_calls([
        call("core_memory_append", label="human", content="Alice's secret: blue door code 4471", request_heartbeat=False),
        call("archival_memory_insert", content="Alice's bank is Mondo, PIN hint 4471", request_heartbeat=False),
    ]))
    await harness.say("remember my secrets", user="alice")
    await harness.svc.writer.flush()
    harness.fake.push(tool_calls([
        call("archival_memory_search", query="bank PIN 4471", request_heartbeat=False),
        call("conversation_search", query="secret door code 4471", request_heartbeat=False),
    ]), text("nothing"))
    await harness.say("what is the door code?", user="bob")
    bob_requests = harness.fake.requests[1:]
    blob = json.dumps(bob_requests)
    assert "Mondo" not in blob and "blue door" not in blob
    assert all("No " in r for r in _tool_results(bob_requests[-1]))


async def test_tool_results_are_clipped_with_a_note(tmp_path: Any, fake_llm: Any, embedder: Any) -> None:
    """A tool result over the size limit is cut, and the model is told so."""
    from tests.conftest import make_settings, start_service
    settings = make_settings(tmp_path, fake_llm.base_url, tool_result_max_chars=300)
    svc, outbox = await start_service(settings, embedder)
    h = Harness(svc, outbox, fake_llm)
    try:
        fake_llm.push(tool_calls([call("archival_memory_insert", content=f"note {i} " + "detail " * 30,
                                       request_heartbeat=False) for i in range(4)]))
        await h.say("save these")
        fake_llm.push(tool_call("archival_memory_search", query="note detail", request_heartbeat=True),
                      text("ok"))
        await h.say("find them")
        result = _tool_results(fake_llm.requests[-1])[-1]
        assert len(result) < 450 and "[cut:" in result and "next page" in result
    finally:
        await svc.redis.delete_prefix()
        await svc.stop()


async def test_rate_limit_sends_a_polite_notice(tmp_path: Any, fake_llm: Any, embedder: Any) -> None:
    """Past the per-minute limit a user gets a notice and the message is not processed."""
    from tests.conftest import make_settings, start_service
    settings = make_settings(tmp_path, fake_llm.base_url, rate_limit_per_minute=2)
    svc, outbox = await start_service(settings, embedder)
    h = Harness(svc, outbox, fake_llm)
    try:
        fake_llm.default = echo
        await h.say("one")
        await h.say("two")
        third = await h.say("three")
        assert outbox.texts(third.event_id, kind="notice")
        assert not outbox.texts(third.event_id)
        assert len(fake_llm.requests) == 2
        await h.say("bob is fine", user="bob")
        assert len(fake_llm.requests) == 3
    finally:
        await svc.redis.delete_prefix()
        await svc.stop()


async def test_agent_calibrates_token_counts_to_the_server(harness: Harness) -> None:
    """The server's reported prompt_tokens rescales our estimate of the prompt."""
    harness.fake.push(text("hi", prompt_tokens=5_000))
    await harness.say("hello")
    tokens = harness.svc.tokens
    assert tokens.ratio > 1.5
    state = await harness.state()
    raw = harness.svc.context.raw_measure(harness.svc.context.assemble(state))
    assert harness.svc.context.pressure(state).tokens > raw
