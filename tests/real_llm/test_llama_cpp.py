"""membot against a real llama-cpp-python server (SmolLM2-135M): every "What was seen" item of
issue 9 reproduced on the real server, asserting membot's behaviour, not the model's."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bot.agent.summary import check_summary
from bot.events import Event
from bot.memory.core import AgentState
from bot.messages import Message, ToolCall
from bot.testing.llama_server import LlamaServer
from bot.testing.recording_proxy import RecordingProxy
from tests.real_llm.conftest import RealHarness, real_harness, real_settings

pytestmark = pytest.mark.slow
STEP_WAIT_S = 2400.0  # generous: a shared 2-core machine can be 10x slower than idle


async def talk(h: RealHarness, text: str, **kw: Any) -> tuple[Event, list[str]]:
    """Send one event and wait for its step; returns it with what the user saw."""
    ev = await h.say(text, wait=False, **kw)
    await h.outbox.wait(ev.event_id, STEP_WAIT_S)
    seen = [r.text for r in h.outbox.replies if r.event_id == ev.event_id and r.kind != "trace"]
    return ev, seen


def clean(state: AgentState) -> None:
    """No message in the FIFO that a strict server would reject or that says nothing."""
    for m in state.fifo:
        assert isinstance(m.content, str)
        if m.role == "assistant":
            assert m.tool_calls or m.content.strip(), "a blank assistant turn was stored"


async def test_ten_turns_with_tools(tmp_path: Path, embedder: Any, proxied: RecordingProxy) -> None:
    """Ten user turns: every turn gets a reply or a notice, every request is valid and the
    server never answers an error; no blank assistant turn is stored (seen: content null
    stored, then HTTP 500 on every later request of that user)."""
    h = await real_harness(real_settings(tmp_path, proxied.base_url), embedder, proxied)
    try:
        lines = ["Hi! My name is Dana.", "I live in Porto.", "I have a cat called Miso.",
                 "What is my name?", "I like green tea.", "Tomorrow I fly to Oslo.",
                 "Remember that my sister is Ana.", "Where do I live?", "What pet do I have?",
                 "Thanks, bye!"]
        for line in lines:
            _, seen = await talk(h, line)
            assert seen, f"no reply and no notice for {line!r}"
        assert h.problems() == []
        state = await h.state()
        clean(state)
        assert sum(m.kind == "user_message" for m in state.fifo) + bool(state.summary) >= 1
    finally:
        await h.svc.stop()


async def test_a_user_poisoned_by_an_old_version_recovers(tmp_path: Path, embedder: Any,
                                                          proxied: RecordingProxy) -> None:
    """A FIFO holding a blank assistant turn and a tool chain whose call has no text (what
    membot used to store) is sent in valid form: the server accepts it and the user is
    answered (seen: HTTP 500 on every message until /pop; chains never completed)."""
    h = await real_harness(real_settings(tmp_path, proxied.base_url), embedder, proxied)
    try:
        def poison(state: AgentState) -> str:
            call = ToolCall("call_old1", "core_memory_append",
                            '{"label": "human", "content": "Name: Dana", "request_heartbeat": true}')
            state.fifo += [
                Message(role="user", content="[user Dana, DM, 2026-12-01 08:00] hi", kind="user_message"),
                Message(role="assistant", content="", kind="assistant"),
                Message(role="user", content="[user Dana, DM, 2026-12-01 08:01] I'm Dana", kind="user_message"),
                Message(role="assistant", content="", kind="assistant", tool_calls=[call]),
                Message(role="tool", content="OK", kind="tool_result", tool_call_id="call_old1",
                        name="core_memory_append"),
            ]
            return "ok"
        await h.svc.admin.edit(h.key(), poison)
        _, seen = await talk(h, "Hello again, who am I?")
        assert seen
        assert h.problems() == []
        sent = h.proxy.chats[0].request["messages"]
        assert any(m.get("tool_calls") and m["content"] == "" for m in sent)
        assert not any(m["role"] == "assistant" and not m.get("tool_calls") and not m["content"]
                       for m in sent)
    finally:
        await h.svc.stop()


async def test_a_heartbeat_never_poisons_the_user(tmp_path: Path, embedder: Any,
                                                  proxied: RecordingProxy) -> None:
    """A timed heartbeat (no one waiting) leaves only valid messages behind; the next user
    message is answered."""
    h = await real_harness(real_settings(tmp_path, proxied.base_url), embedder, proxied)
    try:
        await talk(h, "Hi, I'm Dana.")
        await talk(h, "Time to reflect and tidy memory.", kind="heartbeat")
        _, seen = await talk(h, "Are you there?")
        assert seen and h.problems() == []
        clean(await h.state())
        bounded = [ex.request.get("max_tokens") for ex in h.proxy.chats]
        assert all(isinstance(n, int) and n <= 64 for n in bounded)
    finally:
        await h.svc.stop()


async def test_a_flush_with_a_real_summary(tmp_path: Path, embedder: Any,
                                           proxied: RecordingProxy) -> None:
    """A small budget forces a flush: the real model's summary is kept only if it passes the
    guard (else the previous summary stays, with a note); no prompt goes over the budget;
    the evicted messages stay findable in recall (seen: a 3,871-token prompt against a
    3,072-token budget; a garbage summary replacing the previous one)."""
    settings = real_settings(tmp_path, proxied.base_url, llm_context_window=2_200)
    h = await real_harness(settings, embedder, proxied)
    try:
        story = ("I grew up in Porto near the river, and every summer my grandmother took me "
                 "to the market to buy sardines and figs. ") * 6
        for i in range(12):  # the own template sends no tool schemas: more room per prompt
            await talk(h, f"Part {i}: {story}")
            if (await h.state()).summary:
                break
        state = await h.state()
        assert state.summary, "no flush happened"
        assert check_summary(state.summary, h.svc.context.summary_words()) is None \
            or "left the view without a summary" in state.summary
        for ex in h.proxy.chats:
            usage = ex.response.get("usage") if isinstance(ex.response, dict) else None
            if usage:
                assert usage["prompt_tokens"] + 64 <= 4096
        assert h.problems() == []
        await h.svc.writer.flush()
        hits = await h.svc.admin.search(h.key(), "recall", "grandmother sardines market")
        assert hits
    finally:
        await h.svc.stop()


async def test_overflow_with_a_small_server_window(tmp_path: Path, embedder: Any,
                                                   small_llama: LlamaServer) -> None:
    """The server's window (2,048, llama.cpp's default) is smaller than LLM_CONTEXT_WINDOW
    (8,000): the first overflow names it, membot caps its window, compacts and answers; the
    next message is answered within the server's window (seen: "model unavailable" forever,
    no hint of the setting)."""
    async with RecordingProxy(small_llama.base_url.removesuffix("/v1")) as proxy:
        settings = real_settings(tmp_path, proxy.base_url, llm_context_window=8_000,
                                 llm_reply_reserve=512)
        h = await real_harness(settings, embedder, proxy)
        try:
            _, seen = await talk(h, "Please read this. " + "The river runs past old stone. " * 400)
            assert seen
            assert settings.llm_context_window == 2048
            _, seen = await talk(h, "Short question: are you there?")
            assert seen
            last = h.proxy.chats[-1]
            assert last.status == 200 and last.request["max_tokens"] <= 512
            assert h.problems() == []
        finally:
            await h.svc.stop()


async def test_server_killed_mid_reply(tmp_path: Path, embedder: Any) -> None:
    """The server dies while generating: the user gets a notice, memory is not poisoned, and
    once the server is back the next message is answered."""
    server = LlamaServer(chat_format=None, n_ctx=4096).start()
    try:
        settings = real_settings(tmp_path, server.base_url, llm_reply_reserve=512,
                                 llm_max_retries=1)
        h = await real_harness(settings, embedder, None)  # type: ignore[arg-type]
        try:
            ev = await h.say("Tell me a very long story about the sea.", wait=False)
            await asyncio.sleep(3.0)  # the request is being generated
            server.kill()
            await h.outbox.wait(ev.event_id, STEP_WAIT_S)
            notices = h.outbox.texts(ev.event_id, kind="notice")
            replies = h.outbox.texts(ev.event_id)
            assert notices or replies
            clean(await h.state())
            server = LlamaServer(chat_format=None, n_ctx=4096, port=server.port).start()
            _, seen = await talk(h, "Hello?")
            assert seen
            clean(await h.state())
        finally:
            await h.svc.stop()
    finally:
        server.stop()
