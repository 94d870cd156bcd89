"""The real-server lane: llama-cpp-python's OpenAI-compatible server with SmolLM2-135M, in
both the chatml-function-calling format and the model's own template, behind a recording
proxy so each test can check every request membot sent and every answer it got.

Slow (a real model on shared cores): marked ``slow``; skip locally with ``-m "not slow"``,
CI (scripts/test) always runs it. Assertions are on membot's behaviour — valid requests, no
poisoned user, a reply or a notice for every message — never on the model's wit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.testing.llama_server import MODEL_ALIAS, LlamaServer
from bot.testing.recording_proxy import RecordingProxy
from tests.conftest import Harness, make_settings, start_service
from tests.wire_schema import request_problems

FORMATS = {"chatml-function-calling": "chatml-function-calling", "own-template": None}


def _server(tmp_path_factory: pytest.TempPathFactory, chat_format: str | None,
            n_ctx: int) -> Iterator[LlamaServer]:
    log = tmp_path_factory.mktemp("llama") / "server.log"
    with LlamaServer(chat_format=chat_format, n_ctx=n_ctx, log_path=log) as server:
        yield server


@pytest.fixture(scope="session", params=list(FORMATS))
def llama(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """A server per chat format, n_ctx 4096, shared by the lane."""
    yield from _server(tmp_path_factory, FORMATS[request.param], 4096)


@pytest.fixture(scope="session")
def small_llama(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """llama.cpp's default window (2,048), own template."""
    yield from _server(tmp_path_factory, None, 2048)


def real_settings(tmp_path: Path, base_url: str, **over: Any) -> Any:
    values: dict[str, Any] = dict(llm_model=MODEL_ALIAS, llm_context_window=4096,
                                  llm_reply_reserve=64, llm_timeout_s=600.0, llm_max_retries=1,
                                  max_chain_steps=3, step_timeout_s=2400.0,
                                  tool_arg_max_chars=300)
    values.update(over)
    return make_settings(tmp_path, base_url, **values)


class RealHarness(Harness):
    proxy: RecordingProxy

    def problems(self) -> list[str]:
        """Invalid requests and server errors seen by the proxy (overflow 400s excepted)."""
        out: list[str] = []
        for i, ex in enumerate(self.proxy.chats):
            out += [f"request {i}: {p}" for p in request_problems(ex.request)]
            code = str((ex.response or {}).get("error", {}).get("code")) if isinstance(ex.response, dict) else ""
            if ex.status != 200 and code != "context_length_exceeded":
                out.append(f"request {i}: HTTP {ex.status}: {str(ex.response)[:300]}")
        return out


async def real_harness(settings: Any, embedder: Any, proxy: RecordingProxy) -> RealHarness:
    svc, outbox = await start_service(settings, embedder)
    h = RealHarness(svc, outbox, None)
    h.proxy = proxy
    return h


@pytest.fixture
async def proxied(llama: LlamaServer) -> AsyncIterator[RecordingProxy]:
    async with RecordingProxy(llama.base_url.removesuffix("/v1")) as proxy:
        yield proxy
