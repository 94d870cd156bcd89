"""A fake OpenAI-compatible HTTP server driven by scripted turns.

Tests and benchmarks talk to it over real HTTP through the real openai client::

    async with FakeOpenAI() as fake:
        fake.push(tool_call("send_message", message="hi", request_heartbeat=False))
        fake.push(text("plain answer"), error(status=500), context_overflow())
        client = OpenAIChat(Settings(_env_file=None, llm_base_url=fake.base_url))
        ...
        assert fake.requests[0]["messages"][0]["role"] == "system"

Sync callers (benchmarks, threads) use ``fake = FakeOpenAI().start_in_thread()`` and
``fake.stop()``. Each chat request pops one turn from the queue; when the queue is empty
the ``default`` responder answers (``echo`` is a ready-made one), and without a default the
server answers 400 "script exhausted" so a test that calls the model more than it
scripted fails loudly. Requests the real API would reject (tool calls left unanswered,
stray tool messages, ``tool_choice`` without ``tools``) get its 400 without using a turn;
``validate=False`` turns that off. Endpoints: ``POST /v1/chat/completions`` (non-streaming),
``POST /v1/embeddings`` (deterministic hashed vectors), ``GET /v1/models``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import math
import re
import struct
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ClassVar

from aiohttp import web

_CONTEXT_MSG = (
    "This model's maximum context length is 8192 tokens. However, your messages resulted "
    "in 9000 tokens. Please reduce the length of the messages."
)


@dataclass(frozen=True)
class Turn:
    """One scripted answer of the fake server (build it with the functions below)."""

    status: int = 200
    message: dict[str, Any] | None = None  # the assistant message of a 200 answer
    finish_reason: str = "stop"
    error: dict[str, Any] | None = None  # the "error" object of a 4xx/5xx answer
    headers: Mapping[str, str] = field(default_factory=dict)
    body: object | None = None  # exact JSON body, sent as is (see ``raw``)
    delay_s: float = 0.0  # sleep before answering
    then: Turn | None = None  # what to answer after the delay (None: the default responder)
    prompt_tokens: int | None = None  # usage.prompt_tokens to report (None: estimate)


Responder = Callable[[dict[str, Any]], Turn]
Observer = Callable[[dict[str, Any]], None]


# --- scripting ---------------------------------------------------------------------------
def text(content: str, *, prompt_tokens: int | None = None, finish_reason: str = "stop") -> Turn:
    """A plain assistant answer without tool calls."""
    message = {"role": "assistant", "content": content}
    return Turn(message=message, finish_reason=finish_reason, prompt_tokens=prompt_tokens)


def call(name: str, /, **arguments: Any) -> dict[str, Any]:
    """One tool call in wire form, with a fresh id and JSON-encoded arguments."""
    return {
        "id": f"call_{uuid.uuid4().hex[:24]}",
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments)},
    }


def tool_calls(
    calls: Sequence[dict[str, Any]], *, content: str | None = None, prompt_tokens: int | None = None
) -> Turn:
    """An answer with several tool calls, given in wire form (``call(...)`` or raw dicts)."""
    message = {"role": "assistant", "content": content, "tool_calls": list(calls)}
    return Turn(message=message, finish_reason="tool_calls", prompt_tokens=prompt_tokens)


def tool_call(name: str, /, **arguments: Any) -> Turn:
    """An answer with one tool call: ``tool_call("send_message", message="hi")``."""
    return tool_calls([call(name, **arguments)])


def raw_arguments(name: str, arguments: str | dict[str, Any], *, with_id: bool = True) -> Turn:
    """One tool call whose ``arguments`` are sent exactly as given (bad JSON, a dict...)."""
    wire: dict[str, Any] = {"type": "function", "function": {"name": name, "arguments": arguments}}
    if with_id:
        wire["id"] = f"call_{uuid.uuid4().hex[:24]}"
    return tool_calls([wire])


def error(
    status: int = 500,
    message: str = "The fake server had an error.",
    *,
    retry_after: float | None = None,
    type: str = "server_error",
    code: str | None = None,
) -> Turn:
    """An error answer in OpenAI's shape; ``retry_after`` sets the Retry-After header."""
    headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
    err = {"message": message, "type": type, "param": None, "code": code}
    return Turn(status=status, error=err, headers=headers)


def context_overflow(message: str = _CONTEXT_MSG) -> Turn:
    """OpenAI's 400 ``context_length_exceeded`` answer."""
    return error(400, message, type="invalid_request_error", code="context_length_exceeded")


def delay(seconds: float, then: Turn | None = None) -> Turn:
    """Sleep before answering (``then``, or the default responder) — for client timeouts."""
    return Turn(delay_s=seconds, then=then)


def raw(body: object, status: int = 200) -> Turn:
    """Send this exact JSON body (e.g. ``raw({"choices": []})``)."""
    return Turn(status=status, body=body)


META_PREFIX = "[memory:"  # membot's per-turn metadata line, sent after the conversation


def last_event(request: dict[str, Any]) -> str:
    """Text of the newest user-role message of a request that is not membot's trailing
    memory-metadata line (the event the agent is answering)."""
    for m in reversed(request.get("messages", [])):
        content = str(m.get("content") or "")
        if m.get("role") == "user" and not content.startswith(META_PREFIX):
            return content
    return ""


def echo(request: dict[str, Any]) -> Turn:
    """A default responder: ``send_message`` echoing the last user text; plain text
    (a "summary") when the request carries no tools."""
    said = last_event(request)
    if not request.get("tools"):  # a summary: the words of the request, without our headers
        words = re.sub(r"\[[^\]]*\]|^\s*\w+( \w+)?:", " ", said, flags=re.MULTILINE).split()
        return text("Summary: " + " ".join(words[:40]))
    return tool_call("send_message", message=f"echo: {said[:500]}", request_heartbeat=False)


def fake_embedding(text: str, dim: int = 384) -> list[float]:
    """Deterministic unit vector from hashed words: texts sharing words are similar."""
    vec = [0.0] * dim
    for word in re.findall(r"\w+", text.lower()) or [""]:
        h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "big")
        vec[h % dim] += 1.0 if h >> 63 else -1.0
    norm = math.sqrt(sum(v * v for v in vec))
    if norm == 0.0:
        vec[0], norm = 1.0, 1.0
    return [v / norm for v in vec]


# --- the server ---------------------------------------------------------------------------
class FakeOpenAI:
    """OpenAI-compatible server on 127.0.0.1, scripted with ``push``; see the module doc.

    ``FakeOpenAI.observers`` (shared by every instance) are called with each chat request
    body as received: the test suite registers a schema check there so that every request
    any test sends is validated against the OpenAI request types.
    """

    observers: ClassVar[list[Observer]] = []

    def __init__(
        self,
        *,
        default: Responder | None = None,
        model: str = "gpt-4o-mini",
        embedding_dim: int = 384,
        prompt_tokens: int | None = None,
        validate: bool = True,
        routes: Mapping[str, object] | None = None,
    ) -> None:
        self.default = default
        # extra endpoints: "GET /props" -> JSON body, or (status, JSON body); they replace
        # the built-in ones (e.g. "GET /v1/models" as vLLM answers it)
        self.routes = dict(routes or {})
        self.validate = validate  # reject what the real API rejects (see ``protocol_problem``)
        self.model = model
        self.embedding_dim = embedding_dim
        self.prompt_tokens = prompt_tokens  # reported on every answer unless the turn sets one
        self.requests: list[dict[str, Any]] = []  # every chat request body, in order
        self.embedding_requests: list[dict[str, Any]] = []
        self.abandoned = 0  # delayed answers whose client had closed the connection meanwhile
        self.base_url = ""
        self._queue: deque[Turn] = deque()
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- scripting ---------------------------------------------------------------------
    def push(self, *turns: Turn) -> None:
        """Queue answers for the next chat requests, in order."""
        self._queue.extend(turns)

    @property
    def pending(self) -> int:
        """Scripted turns not consumed yet."""
        return len(self._queue)

    def clear(self) -> None:
        """Drop queued turns and recorded requests."""
        self._queue.clear()
        self.requests.clear()
        self.embedding_requests.clear()

    # --- lifecycle in the current event loop ---------------------------------------------
    async def __aenter__(self) -> FakeOpenAI:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def start(self) -> None:
        app = web.Application()
        for route, answer in self.routes.items():
            method, path = route.split(" ", 1)
            app.router.add_route(method, path, _fixed(answer))
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/embeddings", self._embeddings)
        if "GET /v1/models" not in self.routes:
            app.router.add_get("/v1/models", self._models)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}/v1"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- lifecycle in a background thread (sync callers) ------------------------------------
    def start_in_thread(self) -> FakeOpenAI:
        """Serve from a daemon thread with its own event loop; returns self once listening."""
        ready = threading.Event()
        failure: list[BaseException] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._serve, args=(self._loop, ready, failure), name="fake-openai", daemon=True
        )
        self._thread.start()
        ready.wait(timeout=10)
        if failure or not self.base_url:
            raise RuntimeError("FakeOpenAI did not start") from (failure[0] if failure else None)
        return self

    def stop(self) -> None:
        """Stop the background thread started by ``start_in_thread``."""
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._thread, self._loop = None, None

    def __enter__(self) -> FakeOpenAI:
        return self.start_in_thread()

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _serve(
        self, loop: asyncio.AbstractEventLoop, ready: threading.Event, failure: list[BaseException]
    ) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self.start())
        except BaseException as exc:  # reported by start_in_thread
            failure.append(exc)
            ready.set()
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self.close())
            loop.close()

    # --- handlers ----------------------------------------------------------------------------
    async def _chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        for observe in self.observers:
            observe(body)
        problem = protocol_problem(body) if self.validate else None
        if problem is not None:  # rejected before any turn is used, like the real API
            err = {"message": problem, "type": "invalid_request_error", "param": "messages"}
            return web.json_response({"error": err}, status=400)
        turn = self._queue.popleft() if self._queue else self._fallback(body)
        if turn.delay_s > 0:
            await asyncio.sleep(turn.delay_s)
            if request.transport is None or request.transport.is_closing():
                self.abandoned += 1  # the client closed the request while we "generated"
            turn = turn.then or self._fallback(body)
        if turn.body is not None:
            return web.json_response(turn.body, status=turn.status, headers=turn.headers)
        if turn.status >= 400 or turn.message is None:
            err = turn.error or {"message": "empty turn", "type": "server_error"}
            return web.json_response({"error": err}, status=turn.status, headers=turn.headers)
        return web.json_response(self._completion(turn, body), headers=turn.headers)

    def _fallback(self, body: dict[str, Any]) -> Turn:
        if self.default is not None:
            return self.default(body)
        msg = "FakeOpenAI: script exhausted (no turn queued and no default responder)"
        return error(400, msg, type="fake_script_exhausted")

    def _completion(self, turn: Turn, body: dict[str, Any]) -> dict[str, Any]:
        prompt = turn.prompt_tokens or self.prompt_tokens or _estimate_prompt(body)
        completion = max(1, len(json.dumps(turn.message)) // 4)
        choice = {
            "index": 0,
            "message": turn.message,
            "logprobs": None,
            "finish_reason": turn.finish_reason,
        }
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", self.model),
            "choices": [choice],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        }

    async def _embeddings(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.embedding_requests.append(body)
        inputs = body.get("input", [])
        texts = [inputs] if isinstance(inputs, str) else [str(t) for t in inputs]
        dim = int(body.get("dimensions") or self.embedding_dim)
        as_b64 = body.get("encoding_format") == "base64"
        data = []
        for i, t in enumerate(texts):
            vec = fake_embedding(t, dim)
            emb: Any = base64.b64encode(struct.pack(f"<{dim}f", *vec)).decode() if as_b64 else vec
            data.append({"object": "embedding", "index": i, "embedding": emb})
        tokens = sum(max(1, len(t) // 4) for t in texts)
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": body.get("model", self.model),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    async def _models(self, request: web.Request) -> web.Response:
        model = {"id": self.model, "object": "model", "created": 0, "owned_by": "fake"}
        return web.json_response({"object": "list", "data": [model]})


def _fixed(answer: object) -> Callable[[web.Request], Any]:
    status, body = answer if isinstance(answer, tuple) else (200, answer)

    async def handler(request: web.Request) -> web.Response:
        return web.json_response(body, status=status)

    return handler


def protocol_problem(body: dict[str, Any]) -> str | None:
    """What the real Chat Completions API would reject in this request, or None.

    Checks the rules an agent loop most easily breaks: every assistant ``tool_calls`` is
    answered by ``tool`` messages for each id before the next other message, every tool
    message answers a pending call, and ``tool_choice`` comes only with ``tools``. Like
    strict servers (llama-cpp-python validates with pydantic), ``content`` must be a
    string, and an assistant message without tool calls must say something.
    """
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty array"
    if "tool_choice" in body and not body.get("tools"):
        return "'tool_choice' is only allowed when 'tools' are specified"
    pending: set[str] = set()
    for i, msg in enumerate(messages):
        role = msg.get("role") if isinstance(msg, dict) else None
        if role not in ("system", "developer", "user", "assistant", "tool"):
            return f"messages[{i}]: invalid role {role!r}"
        content = msg.get("content")
        if not isinstance(content, str):
            return f"messages[{i}].content: Input should be a valid string (got {content!r:.40})"
        if role == "assistant" and not msg.get("tool_calls") and not content.strip():
            return f"messages[{i}]: an assistant message needs content or tool_calls"
        if role == "tool":
            if msg.get("tool_call_id") not in pending:
                return (
                    f"messages[{i}]: messages with role 'tool' must be a response to a "
                    "preceding message with 'tool_calls'"
                )
            pending.discard(msg["tool_call_id"])
            continue
        if pending:
            return _unanswered(pending)
        pending = {str(c.get("id")) for c in msg.get("tool_calls") or [] if isinstance(c, dict)}
    return _unanswered(pending) if pending else None


def _unanswered(pending: set[str]) -> str:
    return (
        "An assistant message with 'tool_calls' must be followed by tool messages "
        f"responding to each 'tool_call_id'. Missing: {', '.join(sorted(pending))}"
    )


def _estimate_prompt(body: dict[str, Any]) -> int:
    """~4 characters per token over the messages and tool schemas."""
    size = len(json.dumps(body.get("messages", []))) + len(json.dumps(body.get("tools", [])))
    return max(1, size // 4)
