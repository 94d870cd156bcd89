"""The fake OpenAI server speaks the real API shape: the real openai client parses every answer."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator

import openai
import pytest

from bot.agent.llm import OpenAIChat
from bot.config import Settings
from bot.errors import LLMRejected
from bot.testing import FakeOpenAI, echo, fake_embedding, protocol_problem, text, tool_call

SYSTEM = {"role": "system", "content": "You are membot."}
USER = {"role": "user", "content": "remember that I like tea"}
TOOLS = [
    {"type": "function", "function": {"name": "send_message", "parameters": {"type": "object"}}}
]


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(embedding_dim=64) as server:
        yield server


@pytest.fixture
async def client(fake: FakeOpenAI) -> AsyncIterator[openai.AsyncOpenAI]:
    sdk = openai.AsyncOpenAI(base_url=fake.base_url, api_key="test", max_retries=0, timeout=5)
    yield sdk
    await sdk.close()


def chat(base_url: str) -> OpenAIChat:
    settings = Settings(_env_file=None, llm_base_url=base_url, llm_max_retries=0)  # type: ignore[call-arg]
    return OpenAIChat(settings)


async def test_records_requests_and_pops_turns_in_order(fake: FakeOpenAI) -> None:
    """Each request takes the next scripted turn and is recorded as the model saw it."""
    llm = chat(fake.base_url)
    fake.push(tool_call("send_message", message="hi", request_heartbeat=False), text("done"))
    first = await llm.complete([SYSTEM, USER], TOOLS)
    second = await llm.complete([SYSTEM, USER])
    assert first.tool_calls[0].name == "send_message" and second.content == "done"
    assert [r["messages"][0] for r in fake.requests] == [SYSTEM, SYSTEM]
    assert fake.pending == 0
    await llm.close()


async def test_exhausted_script_fails_loudly(fake: FakeOpenAI) -> None:
    """Without a queued turn or a default responder the server answers an error."""
    llm = chat(fake.base_url)
    with pytest.raises(LLMRejected, match="script exhausted"):
        await llm.complete([USER])
    await llm.close()


async def test_echo_default_responder() -> None:
    """The echo responder answers send_message with tools, and a plain summary without."""
    async with FakeOpenAI(default=echo) as fake:
        llm = chat(fake.base_url)
        with_tools = await llm.complete([SYSTEM, USER], TOOLS)
        summary = await llm.complete([SYSTEM, USER])
        assert with_tools.tool_calls[0].name == "send_message"
        assert "I like tea" in with_tools.tool_calls[0].arguments
        assert summary.content.startswith("Summary:") and not summary.tool_calls
        await llm.close()


CALL = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
ASKED = {"role": "assistant", "content": "", "tool_calls": [CALL]}
ANSWER = {"role": "tool", "tool_call_id": "call_1", "content": "done"}


def test_protocol_rules() -> None:
    """Tool calls must be answered before anything else; tool messages must answer a call."""
    assert protocol_problem({"messages": [USER, ASKED, ANSWER, USER]}) is None
    assert "role 'tool'" in str(protocol_problem({"messages": [USER, ANSWER]}))
    assert "call_1" in str(protocol_problem({"messages": [USER, ASKED, USER]}))
    assert "call_1" in str(protocol_problem({"messages": [USER, ASKED]}))
    assert "tool_choice" in str(protocol_problem({"messages": [USER], "tool_choice": "auto"}))
    assert protocol_problem({"messages": []}) is not None


def test_content_must_be_a_string_like_strict_servers() -> None:
    """content null (with or without tool calls) and a blank assistant turn are rejected."""
    null_call = {**ASKED, "content": None}
    assert "valid string" in str(protocol_problem({"messages": [USER, null_call, ANSWER]}))
    blank = {"role": "assistant", "content": None}
    assert "valid string" in str(protocol_problem({"messages": [USER, blank, USER]}))
    empty = {"role": "assistant", "content": "  "}
    assert "needs content" in str(protocol_problem({"messages": [USER, empty, USER]}))


@pytest.mark.sends_invalid_requests
async def test_invalid_request_rejected_without_using_a_turn(fake: FakeOpenAI) -> None:
    """A request the real API would reject gets a 400 and leaves the script untouched."""
    llm = chat(fake.base_url)
    fake.push(text("unused"))
    with pytest.raises(LLMRejected, match="role 'tool'"):
        await llm.complete([USER, ANSWER])
    assert fake.pending == 1 and len(fake.requests) == 1
    fake.validate = False
    assert (await llm.complete([USER, ANSWER])).content == "unused"
    await llm.close()


async def test_usage_estimated_or_scripted(fake: FakeOpenAI) -> None:
    """prompt_tokens grows with the request, and can be pinned by the fake or by a turn."""
    llm = chat(fake.base_url)
    fake.push(text("a"), text("b"))
    small = await llm.complete([USER])
    large = await llm.complete([USER] * 50)
    assert (
        small.usage and large.usage and large.usage.prompt_tokens > 10 * small.usage.prompt_tokens
    )
    fake.prompt_tokens = 999
    fake.push(text("c"), text("d", prompt_tokens=42))
    assert (pinned := await llm.complete([USER])).usage and pinned.usage.prompt_tokens == 999
    assert (turn := await llm.complete([USER])).usage and turn.usage.prompt_tokens == 42
    await llm.close()


async def test_embeddings_deterministic_and_normalized(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    """Embeddings (base64 by default in the SDK, or floats) are unit vectors of the set dim."""
    texts = ["I like green tea", "green tea is nice", "the stock market fell"]
    packed = await client.embeddings.create(model="e", input=texts)
    plain = await client.embeddings.create(model="e", input=texts, encoding_format="float")
    vecs = [d.embedding for d in packed.data]
    assert [len(v) for v in vecs] == [64, 64, 64]
    assert all(math.isclose(sum(x * x for x in v), 1.0, rel_tol=1e-5) for v in vecs)
    assert vecs[0] == pytest.approx(plain.data[0].embedding, abs=1e-6)
    assert vecs[0] == pytest.approx(fake_embedding(texts[0], 64), abs=1e-6)

    def cos(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert cos(vecs[0], vecs[1]) > cos(vecs[0], vecs[2])
    sized = await client.embeddings.create(model="e", input="x", dimensions=8)
    assert len(sized.data[0].embedding) == 8
    assert fake.embedding_requests[0]["input"] == texts


async def test_models_endpoint(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    """GET /v1/models lists the fake model."""
    page = await client.models.list()
    assert [m.id for m in page.data] == ["gpt-4o-mini"]


def test_runs_in_a_thread_for_sync_callers() -> None:
    """start_in_thread serves sync clients; stop() shuts it down."""
    fake = FakeOpenAI(default=echo).start_in_thread()
    try:
        sdk = openai.OpenAI(base_url=fake.base_url, api_key="test", max_retries=0, timeout=5)
        fake.push(text("from the thread"))
        reply = sdk.chat.completions.create(model="m", messages=[USER], max_tokens=50)  # type: ignore[list-item]
        assert reply.choices[0].message.content == "from the thread"
        again = sdk.chat.completions.create(model="m", messages=[USER], max_tokens=50)  # type: ignore[list-item]
        assert again.choices[0].message.content and "tea" in again.choices[0].message.content
        sdk.close()
    finally:
        fake.stop()
    assert len(fake.requests) == 2
