"""The prompt budget is kept: flush repeats until the prompt fits, a huge message is cut with
a note, an impossible prompt is never sent; the summary guard; a cache-friendly layout."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.agent import tools
from bot.agent.context import ContextManager
from bot.agent.llm import OpenAIChat
from bot.agent.tokens import TokenCounter
from bot.memory.core import AgentState
from bot.messages import Message
from bot.testing.fake_openai import FakeOpenAI, echo, text, tool_call
from tests.conftest import Harness, make_settings, start_service


@pytest.fixture
async def ctx(tmp_path: Path, fake_llm: FakeOpenAI) -> AsyncIterator[ContextManager]:
    settings = make_settings(tmp_path, fake_llm.base_url, llm_context_window=3_072 + 512,
                             llm_reply_reserve=512)
    llm = OpenAIChat(settings)
    yield ContextManager(settings, TokenCounter(settings.llm_model), llm, tools.schemas())
    await llm.close()


def _state(n: int, size: int) -> AgentState:
    state = AgentState.new("u", "", 2_000, 2_000)
    for i in range(n):
        role = "user" if i % 2 == 0 else "assistant"
        state.fifo.append(Message(role=role, content=f"turn {i} " + "words " * size,
                                  kind="user_message" if role == "user" else "assistant"))
    return state


async def test_flush_repeats_until_the_prompt_fits(ctx: ContextManager, fake_llm: FakeOpenAI) -> None:
    """Seen: one flush evicted once and a 3,871-token prompt went out against a 3,072-token
    budget. Now fit flushes again until the prompt is inside the budget."""
    fake_llm.default = echo
    state = _state(40, 120)  # ~5,000 tokens of conversation
    assert ctx.pressure(state).tokens > 1.5 * ctx.settings.prompt_budget
    messages, p, evicted = await ctx.fit(state)
    assert not p.over_budget and p.tokens < 3_072
    assert len(fake_llm.requests) >= 2  # two flushes, each with its summary call
    assert evicted == 40 - len(state.fifo) and state.summary.startswith("Summary:")


async def test_a_message_too_big_even_alone_is_cut_with_a_note(ctx: ContextManager, fake_llm: FakeOpenAI) -> None:
    """When flushing cannot help (one message holds the budget) it is cut with a visible
    note; recall keeps the full text (the stored message object is not changed)."""
    big = Message(role="user", content="lorem " * 4_000, kind="user_message")
    state = AgentState.new("u", "", 2_000, 2_000)
    state.fifo.append(big)
    messages, p, _ = await ctx.fit(state)
    assert not p.over_budget
    sent = [m["content"] for m in messages if "lorem" in m["content"]]
    assert len(sent) == 1 and "[cut to fit the context window:" in sent[0]
    assert big.content == "lorem " * 4_000
    assert fake_llm.requests == []


async def test_an_impossible_prompt_is_never_sent(tmp_path: Path, fake_llm: FakeOpenAI,
                                                  embedder: Any) -> None:
    """Core memory larger than the whole budget: no request is sent, the user gets a notice
    naming LLM_CONTEXT_WINDOW, memory is unchanged."""
    settings = make_settings(tmp_path, fake_llm.base_url, llm_context_window=2_048,
                             llm_reply_reserve=256, core_human_limit=20_000)
    svc, outbox = await start_service(settings, embedder)
    h = Harness(svc, outbox, fake_llm)
    try:
        def grow(state: AgentState) -> str:
            state.human.value = "fact " * 3_000
            return "ok"
        await svc.admin.edit(h.key(), grow)
        ev = await h.say("hi")
        assert fake_llm.requests == []
        notice = outbox.texts(ev.event_id, kind="notice")
        assert len(notice) == 1 and "LLM_CONTEXT_WINDOW" in notice[0]
        # the person's message is kept (for /retry), followed by what they were told
        assert [m.kind for m in (await h.state()).fifo] == ["user_message", "system_alert"]
    finally:
        await svc.stop()


# --- summary guard -----------------------------------------------------------------------
async def test_a_summary_echoing_our_headers_is_rejected(ctx: ContextManager, fake_llm: FakeOpenAI) -> None:
    """Seen: a weak model's summary echoed a `[user alice, DM, ...]` header and replaced the
    previous summary. Now it is rejected: the previous summary stays, with a note saying
    the evicted period is in recall."""
    evicted = _state(4, 5).fifo
    fake_llm.push(text("[user alice, DM, 2026-12-01 08:00] hi [user alice, DM] hi"))
    out = await ctx.summarize("Alice likes tea and lives in Porto.", evicted)
    assert out.startswith("Alice likes tea and lives in Porto.")
    assert "conversation_search_date" in out
    fake_llm.push(text(""))
    again = await ctx.summarize(out, evicted)
    assert again.count("left the view without a summary") == 1


async def test_an_empty_or_rambling_summary_is_rejected(ctx: ContextManager, fake_llm: FakeOpenAI) -> None:
    """An empty summary or one far over its word budget keeps the previous summary."""
    evicted = _state(2, 5).fifo
    words = ctx.summary_words()
    fake_llm.push(text("   "), text("blah " * (words * 3)), text("Alice moved to Porto in May."))
    assert (await ctx.summarize("Prev.", evicted)).startswith("Prev. (Messages from")
    assert (await ctx.summarize("Prev.", evicted)).startswith("Prev. (Messages from")
    assert await ctx.summarize("Prev.", evicted) == "Alice moved to Porto in May."
    caps = [r["max_tokens"] for r in fake_llm.requests]
    assert all(c < ctx.settings.llm_reply_reserve for c in caps)  # a smaller cap for summaries


# --- prompt-cache-friendly layout ---------------------------------------------------------
async def test_consecutive_requests_share_everything_but_the_metadata_line(harness: Harness) -> None:
    """Seen: the time/counts line sat in the system message, so only ~382 of ~1,400 prompt
    tokens matched the previous request. Now each request starts with all of the previous
    one except its trailing metadata line."""
    for i in range(4):
        harness.fake.push(tool_call("send_message", message=f"reply {i}", request_heartbeat=False))
        await harness.say(f"message {i}")
    reqs = [r["messages"] for r in harness.fake.requests]
    for prev, cur in zip(reqs, reqs[1:], strict=False):
        assert cur[: len(prev) - 1] == prev[:-1]
        assert prev[-1]["content"].startswith("[memory:")
