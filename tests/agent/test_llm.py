"""OpenAIChat against the fake OpenAI server, over real HTTP through the real openai client."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.agent.llm import OpenAIChat
from bot.config import Settings
from bot.errors import (
    ConfigError,
    ContextOverflow,
    LLMRejected,
    LLMTimeout,
    LLMUnavailable,
    ModelBehaviorError,
)
from bot.testing import (
    FakeOpenAI,
    call,
    context_overflow,
    delay,
    error,
    raw,
    raw_arguments,
    text,
    tool_call,
    tool_calls,
)

USER = [{"role": "user", "content": "hello"}]
TOOLS = [
    {"type": "function", "function": {"name": "send_message", "parameters": {"type": "object"}}}
]


def make_llm(base_url: str, **overrides: Any) -> OpenAIChat:
    fields: dict[str, Any] = {
        "llm_base_url": base_url,
        "llm_model": "test-model",
        "llm_max_retries": 2,
    }
    fields.update(overrides)
    settings = Settings(_env_file=None, **fields)  # type: ignore[call-arg]
    return OpenAIChat(settings, backoff_base_s=0.01, backoff_max_s=0.05, retry_after_cap_s=0.05)


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


@pytest.fixture
async def llm(fake: FakeOpenAI) -> AsyncIterator[OpenAIChat]:
    client = make_llm(fake.base_url)
    yield client
    await client.close()


# --- parsing -----------------------------------------------------------------------------
async def test_tool_calls_parsed_in_order(fake: FakeOpenAI, llm: OpenAIChat) -> None:
    """Several tool calls come back in the model's order with their ids and JSON arguments."""
    fake.push(tool_calls([call("a", x=1), call("b", y="two"), call("c")], content="thinking"))
    out = await llm.complete(USER, TOOLS)
    assert [c.name for c in out.tool_calls] == ["a", "b", "c"]
    assert [json.loads(c.arguments) for c in out.tool_calls] == [{"x": 1}, {"y": "two"}, {}]
    assert len({c.id for c in out.tool_calls}) == 3
    assert out.content == "thinking"
    assert out.finish_reason == "tool_calls"


async def test_plain_text_answer(fake: FakeOpenAI, llm: OpenAIChat) -> None:
    """Content without tool calls is returned as text with an empty call list and usage."""
    fake.push(text("plain answer", prompt_tokens=1234))
    out = await llm.complete(USER)
    assert (out.content, out.tool_calls, out.finish_reason) == ("plain answer", [], "stop")
    assert out.usage is not None and out.usage.prompt_tokens == 1234
    assert out.usage.completion_tokens > 0


async def test_dict_arguments_are_json_encoded(fake: FakeOpenAI, llm: OpenAIChat) -> None:
    """Arguments sent as a JSON object (some local servers) become JSON text."""
    fake.push(raw_arguments("send_message", {"message": "hi", "request_heartbeat": False}))
    (only,) = (await llm.complete(USER, TOOLS)).tool_calls
    assert json.loads(only.arguments) == {"message": "hi", "request_heartbeat": False}


async def test_malformed_arguments_are_kept_verbatim(fake: FakeOpenAI, llm: OpenAIChat) -> None:
    """Invalid JSON arguments pass through untouched for the executor to report to the model."""
    fake.push(raw_arguments("send_message", "{not json"))
    (only,) = (await llm.complete(USER, TOOLS)).tool_calls
    assert (only.name, only.arguments) == ("send_message", "{not json")


async def test_missing_ids_are_generated(fake: FakeOpenAI, llm: OpenAIChat) -> None:
    """Tool calls without id (or type) get distinct generated ids."""
    bare = [{"function": {"name": n, "arguments": "{}"}} for n in ("a", "b")]
    fake.push(tool_calls(bare))
    out = await llm.complete(USER, TOOLS)
    ids = [c.id for c in out.tool_calls]
    assert all(ids) and len(set(ids)) == 2
    assert [c.name for c in out.tool_calls] == ["a", "b"]


@pytest.mark.parametrize(
    "body",
    [
        {"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": []},
        {"choices": [{"index": 0, "finish_reason": "stop"}]},
    ],
    ids=["no-choices", "no-message"],
)
async def test_empty_choices_is_model_behavior_error(
    fake: FakeOpenAI, llm: OpenAIChat, body: dict[str, Any]
) -> None:
    """An answer without choices (or without a message) raises ModelBehaviorError."""
    fake.push(raw(body))
    with pytest.raises(ModelBehaviorError):
        await llm.complete(USER)


async def test_non_completion_body_is_unavailable(fake: FakeOpenAI, llm: OpenAIChat) -> None:
    """A 200 whose body is not a completion object (wrong URL, a proxy page) is LLMUnavailable."""
    fake.push(raw(["not", "a", "completion"]))
    with pytest.raises(LLMUnavailable, match="LLM_BASE_URL"):
        await llm.complete(USER)


# --- the request -------------------------------------------------------------------------
async def test_tool_choice_auto_only_with_tools(fake: FakeOpenAI, llm: OpenAIChat) -> None:
    """tools + tool_choice=auto are sent only when tools are given; max_tokens is passed on."""
    fake.push(tool_call("send_message", message="hi"), text("summary"))
    await llm.complete(USER, TOOLS, max_tokens=77)
    await llm.complete(USER)
    with_tools, without = fake.requests
    assert with_tools["tool_choice"] == "auto" and with_tools["tools"] == TOOLS
    assert with_tools["max_tokens"] == 77 and with_tools["model"] == "test-model"
    assert "tools" not in without and "tool_choice" not in without
    assert without["messages"] == USER


async def test_no_endpoint_is_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a base URL or a key, construction raises ConfigError."""
    for var in ("LLM_API_KEY", "OPENAI_API_KEY", "LLM_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ConfigError):
        OpenAIChat(Settings(_env_file=None))  # type: ignore[call-arg]


# --- failures ----------------------------------------------------------------------------
async def test_500_then_success_is_retried(fake: FakeOpenAI, llm: OpenAIChat) -> None:
    """A 5xx is retried and the next answer is returned."""
    fake.push(error(500), text("ok"))
    assert (await llm.complete(USER)).content == "ok"
    assert len(fake.requests) == 2


async def test_429_exhausts_retries(fake: FakeOpenAI, llm: OpenAIChat) -> None:
    """Rate limits past llm_max_retries raise LLMUnavailable after 1 + retries attempts."""
    fake.push(*[error(429, "Rate limit reached", retry_after=0, type="rate_limit_error")] * 4)
    with pytest.raises(LLMUnavailable, match="429"):
        await llm.complete(USER)
    assert len(fake.requests) == 3 and fake.pending == 1


async def test_retry_after_is_capped(fake: FakeOpenAI, llm: OpenAIChat) -> None:
    """A huge Retry-After is honoured only up to the cap."""
    fake.push(error(503, retry_after=3600), text("ok"))
    started = time.monotonic()
    assert (await llm.complete(USER)).content == "ok"
    assert time.monotonic() - started < 2


async def test_timeout_raises_llm_timeout(fake: FakeOpenAI) -> None:
    """No answer within llm_timeout_s raises LLMTimeout promptly, without retrying."""
    llm = make_llm(fake.base_url, llm_timeout_s=0.3)
    fake.push(delay(3, text("too late")))
    started = time.monotonic()
    with pytest.raises(LLMTimeout):
        await llm.complete(USER)
    assert time.monotonic() - started < 2
    assert len(fake.requests) == 1
    await llm.close()


async def test_timeout_closes_the_request(fake: FakeOpenAI) -> None:
    """On timeout the HTTP request is closed, so a server that watches its client stops
    generating (seen: after our timeout the server kept generating for minutes)."""
    llm = make_llm(fake.base_url, llm_timeout_s=0.3)
    fake.push(delay(1.0, text("too late")))
    with pytest.raises(LLMTimeout):
        await llm.complete(USER)
    for _ in range(40):
        if fake.abandoned:
            break
        await asyncio.sleep(0.05)
    assert fake.abandoned == 1
    await llm.close()


async def test_context_overflow(fake: FakeOpenAI, llm: OpenAIChat) -> None:
    """OpenAI's context_length_exceeded raises ContextOverflow without retrying."""
    fake.push(context_overflow())
    with pytest.raises(ContextOverflow, match="maximum context length"):
        await llm.complete(USER)
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    "answer",
    [
        raw(
            {
                "object": "error",
                "type": "BadRequestError",
                "param": None,
                "code": 400,
                "message": "This model's maximum context length is 4096 tokens. However, you "
                "requested 5000 tokens (4800 in the messages, 200 in the completion).",
            },
            status=400,
        ),  # vLLM
        raw(
            {
                "error": {
                    "code": 400,
                    "type": "exceed_context_size_error",
                    "n_ctx": 4096,
                    "message": "the request exceeds the available context size, try increasing it",
                }
            },
            status=400,
        ),  # llama.cpp server
        raw({"error": "the input length exceeds the context length"}, status=400),  # Ollama
        error(
            400,
            "Trying to keep the first 5000 tokens when context the overflows. However, the "
            "model is loaded with context length of only 4096 tokens.",
        ),  # LM Studio
        error(
            422, "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096."
        ),  # TGI
        error(400, "prompt is too long: 210000 tokens > 200000 maximum"),  # gateways
    ],
    ids=["vllm", "llama.cpp", "ollama", "lmstudio", "tgi", "gateway"],
)
async def test_context_overflow_local_servers(
    fake: FakeOpenAI, llm: OpenAIChat, answer: Any
) -> None:
    """Local servers' "prompt too long" wordings raise ContextOverflow."""
    fake.push(answer)
    with pytest.raises(ContextOverflow):
        await llm.complete(USER)


async def test_other_4xx_carries_server_message(fake: FakeOpenAI, llm: OpenAIChat) -> None:
    """A 404 names LLM_BASE_URL/LLM_MODEL; another 4xx is LLMRejected; neither is retried."""
    fake.push(error(404, "model 'nope' not found, try pulling it first"))
    with pytest.raises(LLMUnavailable, match="model 'nope' not found.*LLM_BASE_URL.*LLM_MODEL"):
        await llm.complete(USER)
    fake.push(error(400, "Invalid value for 'temperature'"))
    with pytest.raises(LLMRejected, match="temperature") as info:
        await llm.complete(USER)
    assert not isinstance(info.value, ContextOverflow)
    assert len(fake.requests) == 2


async def test_500_validation_error_is_not_retried(fake: FakeOpenAI, llm: OpenAIChat) -> None:
    """llama-cpp-python answers a request it cannot validate with a 500: LLMRejected at once,
    not three retries as if the server were down (seen: 'content: Input should be a valid
    string', retried three times on every message)."""
    fake.push(error(500, "7 validation errors:\n  {'loc': ('body', 'messages', 1)}\n"
                         "content\n  Input should be a valid string"))
    with pytest.raises(LLMRejected, match="valid string"):
        await llm.complete(USER)
    assert len(fake.requests) == 1


async def test_every_call_is_bounded_by_max_tokens(fake: FakeOpenAI, llm: OpenAIChat) -> None:
    """Without an explicit cap the reply reserve is sent as max_tokens (seen: a heartbeat
    generated 7,681 tokens for 473 s because nothing bounded it)."""
    fake.push(text("a"), text("b"))
    await llm.complete(USER)
    await llm.complete(USER, max_tokens=77)
    assert [r["max_tokens"] for r in fake.requests] == [1_024, 77]


async def test_overflow_names_the_servers_window(fake: FakeOpenAI, llm: OpenAIChat) -> None:
    """The window a server names in its overflow error is kept on the error (llama.cpp's
    2,048 default reaches membot only this way)."""
    fake.push(context_overflow("This model's maximum context length is 2048 tokens. However, "
                               "you requested 3871 tokens (3871 in the messages, None in the "
                               "completion)."))
    with pytest.raises(ContextOverflow) as info:
        await llm.complete(USER)
    assert info.value.window == 2048


async def test_auth_error_never_shows_the_key(fake: FakeOpenAI) -> None:
    """A 401 says the key is wrong without the key appearing anywhere in the error chain."""
    secret = "sk-proj-SuperSecret1234567890"
    llm = make_llm(fake.base_url, llm_api_key=secret)
    fake.push(
        error(
            401,
            f"Incorrect API key provided: {secret}.",
            type="invalid_request_error",
            code="invalid_api_key",
        )
    )
    with pytest.raises(LLMUnavailable, match="API key") as info:
        await llm.complete(USER)
    exc: BaseException | None = info.value
    while exc is not None:
        assert "SuperSecret" not in str(exc) and "SuperSecret" not in repr(exc)
        exc = exc.__cause__ or exc.__context__
    await llm.close()


async def test_connection_refused_is_unavailable() -> None:
    """An endpoint nobody listens on raises LLMUnavailable after the bounded retries."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    llm = make_llm(f"http://127.0.0.1:{port}/v1", llm_max_retries=1)
    with pytest.raises(LLMUnavailable, match="cannot reach"):
        await llm.complete(USER)
    await llm.close()
