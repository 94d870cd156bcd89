"""The ``LLM`` protocol over any OpenAI-compatible Chat Completions endpoint.

The only module importing the openai SDK for chat. Its errors are translated here:

- timeout (the SDK's, or the total deadline)          -> LLMTimeout (not retried)
- 429, 408, 409, 5xx, connection refused/reset        -> retried with bounded exponential
  backoff and jitter (Retry-After honoured up to a cap), then LLMUnavailable
- any error whose message says the prompt is too long -> ContextOverflow (with the window
  the server named, when it named one)
- 401/403                                             -> LLMUnavailable (the key is never shown)
- other 4xx, and a 500 whose text is a request validation error (llama-cpp-python answers
  pydantic errors with 500)                           -> LLMRejected, not retried
- no choices / no message                             -> ModelBehaviorError

Answers of lenient local servers are normalised: tool calls without ids get generated
ids, ``arguments`` given as a JSON object are re-encoded as text, a legacy
``function_call`` becomes one tool call.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import re
import time
import uuid
from collections.abc import Mapping
from typing import Any, NamedTuple

import httpx2
import openai
from openai.types.chat import ChatCompletion

from bot.agent import wire
from bot.config import Settings
from bot.errors import (
    ContextOverflow,
    LLMError,
    LLMRejected,
    LLMTimeout,
    LLMUnavailable,
    ModelBehaviorError,
)
from bot.messages import ToolCall
from bot.protocols import Completion, Usage

log = logging.getLogger(__name__)

OPENAI_URL = "https://api.openai.com/v1"
NO_KEY = "not-needed"  # local servers ignore the key, but the SDK wants one

# What servers say when the prompt is longer than the window (OpenAI, vLLM, llama.cpp,
# Ollama, LM Studio, TGI, Anthropic-style gateways).
_OVERFLOW = re.compile(
    r"context_length_exceeded|exceed_context_size|maximum context length"
    r"|(exceed|greater than|longer than|larger than|more than|too long)[^.]{0,80}"
    r"context (length|size|window)"
    r"|context (length|size|window)[^.]{0,40}(exceed|too small)|context[^.]{0,20}overflow"
    r"|prompt is too long|input is too long|prompt too long|too many (input |prompt )?tokens"
    r"|max_new_tokens`? must be <=",
    re.IGNORECASE,
)
_WINDOW = re.compile(r"(?:maximum context length|context window of|context size|n_ctx)"
                     r"\D{0,20}(\d{3,7})", re.IGNORECASE)
# a 5xx that is really the server refusing the request body (sending it again fails again)
_VALIDATION = re.compile(r"validation errors?\b|Input should be|Field required"
                         r"|Extra inputs are not permitted|invalid request", re.IGNORECASE)
_KEYLIKE = re.compile(r"\b(sk|key)-[A-Za-z0-9_*.\-]{4,}")
_RETRY_STATUS = frozenset({408, 409, 429})
_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")


class _Failure(NamedTuple):
    error: LLMError
    retryable: bool
    retry_after: float | None = None
    chain: bool = True  # keep the SDK exception as __cause__ (False when it may echo the key)


class OpenAIChat:
    """One chat completion per call, with bounded retries; implements ``bot.protocols.LLM``."""

    def __init__(
        self,
        settings: Settings,
        *,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 8.0,
        retry_after_cap_s: float = 30.0,
    ) -> None:
        settings.require_llm()
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else ""
        self._key = key
        self._model = settings.llm_model
        self._temperature = settings.llm_temperature
        self._timeout_s = settings.llm_timeout_s
        self._max_retries = settings.llm_max_retries
        self._reply_reserve = settings.llm_reply_reserve
        self._backoff_base_s = backoff_base_s
        self._backoff_max_s = backoff_max_s
        self._retry_after_cap_s = retry_after_cap_s
        self._url = settings.llm_base_url or OPENAI_URL
        self._client = openai.AsyncOpenAI(
            base_url=self._url,
            api_key=key or NO_KEY,
            timeout=settings.llm_timeout_s,
            max_retries=0,
        )

    @property
    def base_url(self) -> str:
        return self._url

    async def fetch_json(self, url: str, body: dict[str, Any] | None = None,
                         timeout_s: float = 5.0) -> tuple[int, Any]:
        """GET (POST with ``body``) a JSON document: (HTTP status, parsed body or None).
        Relative URLs are under LLM_BASE_URL. Raises LLMUnavailable if nothing answers."""
        try:
            async with asyncio.timeout(timeout_s):
                if body is None:
                    resp = await self._client.get(url, cast_to=httpx2.Response)
                else:
                    resp = await self._client.post(url, cast_to=httpx2.Response, body=body)
        except openai.APIStatusError as exc:
            return exc.status_code, _json_or_none(exc.response)
        except (openai.APIConnectionError, openai.APITimeoutError, TimeoutError) as exc:
            raise LLMUnavailable(f"nothing answered at {self._url}: {type(exc).__name__}") from None
        return resp.status_code, _json_or_none(resp)

    async def ping(self, timeout_s: float = 3.0) -> bool:
        """Readiness: the endpoint answers ``GET /models`` (any HTTP answer counts as up)."""
        try:
            await asyncio.wait_for(self._client.models.list(), timeout_s)
        except openai.APIStatusError:
            return True  # reachable; some servers do not implement /models
        except (openai.OpenAIError, TimeoutError):
            return False
        return True

    async def complete(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        *,
        max_tokens: int | None = None,
        response_format: dict[str, Any] | None = None,
    ) -> Completion:
        """One chat completion. Raises LLMTimeout, LLMUnavailable, LLMRejected,
        ContextOverflow, ModelBehaviorError."""
        request = self._request(messages, tools, max_tokens)
        if response_format is not None:
            request["response_format"] = response_format
        attempt = 0
        while True:
            try:
                return parse_completion(await self._create(request))
            except openai.OpenAIError as exc:
                failure = self._classify(exc)
                cause = exc if failure.chain else None
            # raised outside the except block: an unchained error keeps no __context__ either
            if not failure.retryable or attempt >= self._max_retries:
                raise failure.error from cause
            wait = self._backoff(attempt, failure.retry_after)
            attempt += 1
            log.warning(
                "LLM call failed (%s); retry %d/%d in %.2fs",
                failure.error,
                attempt,
                self._max_retries,
                wait,
            )
            await asyncio.sleep(wait)

    async def close(self) -> None:
        await self._client.close()

    # --- request -----------------------------------------------------------------------------
    def _request(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        max_tokens: int | None,
    ) -> dict[str, Any]:
        reasoning = self._model.startswith(_REASONING_PREFIXES)
        request: dict[str, Any] = {"model": self._model, "messages": wire.normalize(messages)}
        if not reasoning:  # o-series / gpt-5 accept only their default temperature
            request["temperature"] = self._temperature
        if tools:
            request["tools"] = tools
            request["tool_choice"] = "auto"
        # every call is bounded: a server left to itself may generate until its window is full
        cap = max_tokens if max_tokens is not None else self._reply_reserve
        request["max_completion_tokens" if reasoning else "max_tokens"] = cap
        return request

    async def _create(self, request: dict[str, Any]) -> ChatCompletion:
        # The SDK's timeout bounds each phase (connect, read...); this bounds the whole call.
        try:
            async with asyncio.timeout(self._timeout_s):
                # The plain JSON body is already in wire form: posting it directly skips the
                # SDK's per-message type-driven transform, which costs ~1 ms per message.
                resp = await self._client.post(
                    "/chat/completions", cast_to=ChatCompletion, body=request
                )
        except TimeoutError:
            raise LLMTimeout(f"the LLM did not answer within {self._timeout_s:g}s") from None
        if not isinstance(
            resp, ChatCompletion
        ):  # the SDK hands back non-JSON/non-object bodies as is
            got = self._redact(str(resp))[:120]
            raise LLMUnavailable(
                f"{self._url} answered something that is not a chat completion "
                f"({got!r}); check LLM_BASE_URL"
            )
        return resp

    # --- errors ------------------------------------------------------------------------------
    def _classify(self, exc: openai.OpenAIError) -> _Failure:
        if isinstance(exc, openai.APITimeoutError):
            return _Failure(
                LLMTimeout(f"the LLM did not answer within {self._timeout_s:g}s"), False
            )
        if isinstance(exc, openai.APIConnectionError):
            return _Failure(LLMUnavailable(f"cannot reach the LLM at {self._url}: {exc}"), True)
        if not isinstance(exc, openai.APIStatusError):
            return _Failure(LLMUnavailable(f"LLM call failed: {self._redact(str(exc))}"), False)
        status, message = exc.status_code, self._redact(_server_message(exc))
        if _OVERFLOW.search(f"{exc.code or ''} {exc.type or ''} {message}"):
            named = _WINDOW.search(message)
            window = int(named.group(1)) if named else None
            text = f"the prompt is longer than the model's window: {message}"
            return _Failure(ContextOverflow(text, window), False)
        if status == 401:
            text = f"the LLM endpoint {self._url} rejected the API key (HTTP 401): check LLM_API_KEY / OPENAI_API_KEY"
            return _Failure(LLMUnavailable(text), False, chain=False)
        if status == 403:
            return _Failure(
                LLMUnavailable(f"the LLM endpoint refused access (HTTP 403): {message}"),
                False,
                chain=False,
            )
        if status >= 500 and _VALIDATION.search(message):
            text = (f"the LLM server refused the request as invalid (HTTP {status}): "
                    f"{message[:300]}")
            return _Failure(LLMRejected(text), False)
        if status in _RETRY_STATUS or status >= 500:
            error = LLMUnavailable(f"the LLM endpoint failed (HTTP {status}): {message}")
            return _Failure(error, True, _retry_after(exc.response.headers))
        if status == 404:
            text = (f"the LLM endpoint {self._url} answered 404 ({message[:200]}): check "
                    "LLM_BASE_URL (most servers want the /v1 suffix) and LLM_MODEL")
            return _Failure(LLMUnavailable(text), False)
        return _Failure(
            LLMRejected(f"the LLM endpoint refused the request (HTTP {status}): {message[:300]}"),
            False,
        )

    def _redact(self, text: str) -> str:
        if self._key:
            text = text.replace(self._key, "***")
        return _KEYLIKE.sub(r"\1-***", text)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self._retry_after_cap_s)
        ceiling = min(self._backoff_base_s * 2.0**attempt, self._backoff_max_s)
        return ceiling * (0.5 + random.random() / 2)  # jitter: half to all of the ceiling


# --- response ----------------------------------------------------------------------------------
def parse_completion(resp: ChatCompletion) -> Completion:
    """Our Completion from the SDK's, tolerating what lenient servers leave out."""
    if not resp.choices or resp.choices[0].message is None:
        raise ModelBehaviorError("the LLM answered without any choice")
    choice = resp.choices[0]
    msg = choice.message
    calls = [_tool_call(tc) for tc in msg.tool_calls or []]
    if not calls and msg.function_call is not None:  # legacy function calling
        calls = [_make_call(None, msg.function_call.name, msg.function_call.arguments)]
    usage = None
    if resp.usage is not None:
        usage = Usage(resp.usage.prompt_tokens or 0, resp.usage.completion_tokens or 0)
    return Completion(
        content=msg.content or "",
        tool_calls=calls,
        usage=usage,
        finish_reason=choice.finish_reason or "",
    )


def _tool_call(tc: Any) -> ToolCall:
    fn = getattr(tc, "function", None)
    if fn is not None:
        return _make_call(tc.id, fn.name, fn.arguments)
    custom = getattr(tc, "custom", None)  # "custom" tools: free-text input
    return _make_call(tc.id, getattr(custom, "name", ""), getattr(custom, "input", ""))


def _make_call(call_id: Any, name: Any, arguments: Any) -> ToolCall:
    if arguments is None or arguments == "":
        arguments = "{}"
    elif not isinstance(arguments, str):  # some servers send the JSON object itself
        arguments = json.dumps(arguments)
    call_id = call_id if isinstance(call_id, str) and call_id else f"call_{uuid.uuid4().hex[:24]}"
    return ToolCall(id=call_id, name=str(name or ""), arguments=arguments)


def _server_message(exc: openai.APIStatusError) -> str:
    """The server's own words: the body's message when it has one, else the raw body."""
    body = exc.body
    if isinstance(body, dict):
        msg = body.get("message") or body.get("error") or body.get("detail")
        if msg:
            return str(msg if not isinstance(msg, dict) else msg.get("message", msg))
    if isinstance(body, str) and body.strip():
        return body.strip()[:500]
    return exc.message


def _json_or_none(resp: httpx2.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from Retry-After-Ms / Retry-After (number or HTTP date); None if absent."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return float(value) * scale
        except ValueError:
            parsed = email.utils.parsedate_tz(value)
            if parsed is not None:
                return float(email.utils.mktime_tz(parsed) - time.time())
    return None
