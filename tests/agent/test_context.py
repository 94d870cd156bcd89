"""Main context under pressure: the warning alert, eviction with a recursive summary, and
the server's context-length error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.agent.context import evict_cut
from bot.messages import Message, ToolCall
from bot.testing.fake_openai import context_overflow, echo, text, tool_call
from tests.conftest import Harness, make_settings, start_service


def _msg(role: str, kind: str = "assistant", calls: int = 0) -> Message:
    tc = [ToolCall(f"c{i}", "send_message", "{}") for i in range(calls)]
    return Message(role=role, content="x", kind=kind, tool_calls=tc)  # type: ignore[arg-type]


def test_evict_cut_never_separates_a_call_from_its_results() -> None:
    """The first kept message is never a tool result."""
    fifo = [_msg("user", "user_message"), _msg("assistant", calls=2), _msg("tool", "tool_result"),
            _msg("tool", "tool_result"), _msg("user", "user_message"), _msg("assistant")]
    for fraction in (0.3, 0.4, 0.5, 0.6):
        cut = evict_cut(fifo, fraction)
        assert fifo[cut].role != "tool"
        assert 0 < cut < len(fifo)


async def _small_service(tmp_path: Path, fake: Any, embedder: Any, window: int) -> Harness:
    settings = make_settings(tmp_path, fake.base_url, llm_context_window=window,
                             llm_reply_reserve=200)
    svc, outbox = await start_service(settings, embedder)
    return Harness(svc, outbox, fake)


async def test_pressure_warning_is_sent_once_per_period(tmp_path: Path, fake_llm: Any, embedder: Any) -> None:
    """Past the warning fraction the agent gets one memory-pressure alert, not one per step."""
    h = await _small_service(tmp_path, fake_llm, embedder, window=2_600)
    try:
        fake_llm.default = echo
        fixed = h.svc.context.pressure(await h.state()).tokens
        budget = h.svc.settings.prompt_budget
        filler = "word " * int((budget * 0.72 - fixed) / 1.0)
        await h.say(filler[: int(len(filler))])
        await h.say("and one more")
        state = await h.state()
        alerts = [m for m in state.fifo if m.kind == "system_alert" and "Memory pressure" in m.content]
        assert len(alerts) == 1
        sent = [r for r in fake_llm.requests if any("Memory pressure" in str(m.get("content")) for m in r["messages"])]
        assert sent
    finally:
        await h.svc.stop()


async def test_flush_evicts_half_and_writes_a_recursive_summary(tmp_path: Path, fake_llm: Any, embedder: Any) -> None:
    """At the budget the oldest messages leave the FIFO into an LLM summary and stay in recall."""
    h = await _small_service(tmp_path, fake_llm, embedder, window=2_600)
    try:
        fake_llm.default = echo
        for i in range(40):
            await h.say(f"message number {i} about topic {i} " + "blah " * 20)
            state = await h.state()
            if state.summary:
                break
        assert state.summary.startswith("Summary:")
        summaries = [r for r in fake_llm.requests if not r.get("tools")]
        assert summaries and "Previous summary" in summaries[0]["messages"][1]["content"]
        assert not state.fifo or state.fifo[0].role != "tool"
        await h.svc.writer.flush()
        hits = await h.svc.memory.search("recall", h.key(), "message number 0", limit=3)
        assert any("message number 0 " in x.item.text for x in hits)
        prompt = h.svc.context.pressure(state)
        assert prompt.tokens < prompt.budget
    finally:
        await h.svc.stop()


async def test_context_overflow_from_server_summarizes_and_retries(harness: Harness) -> None:
    """A context-length error makes the agent flush the FIFO and retry once."""
    harness.fake.default = echo
    for i in range(4):
        await harness.say(f"filler {i}")
    harness.fake.default = None
    harness.fake.push(context_overflow(), text("Summary: earlier chat"),
                      tool_call("send_message", message="after retry", request_heartbeat=False))
    ev = await harness.say("now overflow")
    assert harness.outbox.texts(ev.event_id) == ["after retry"]
    state = await harness.state()
    assert state.summary == "Summary: earlier chat"


async def test_prompt_carries_core_memory_metadata_and_summary(harness: Harness) -> None:
    """The system message holds instructions and both core blocks; the memory metadata
    (counts, time) comes last, after the event, so the prefix stays cacheable."""
    harness.fake.push(tool_call("send_message", message="hi", request_heartbeat=False))
    await harness.say("hello", where="channel")
    messages = harness.fake.requests[0]["messages"]
    system = messages[0]["content"]
    assert "<persona>" in system and "<human>" in system and "messages in recall" not in system
    assert "messages in recall" in messages[-1]["content"]
    assert "#general (others can read)" in messages[-2]["content"]


async def test_a_huge_message_is_cut_to_fit(tmp_path: Path, fake_llm: Any, embedder: Any) -> None:
    """A message larger than the budget is cut with a visible note instead of overflowing."""
    h = await _small_service(tmp_path, fake_llm, embedder, window=2_600)
    try:
        fake_llm.default = echo
        await h.say("lorem ipsum " * 2_000)
        state = await h.state()
        first = state.fifo[0].content if not state.summary else ""
        sent = [m["content"] for m in fake_llm.requests[0]["messages"] if "lorem" in str(m["content"])]
        assert len(sent) == 1 and "[message cut:" in sent[0] and len(sent[0]) < 6_000
        assert first == "" or "[message cut:" in first
    finally:
        await h.svc.stop()
