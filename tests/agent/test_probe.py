"""The start-up probe: endpoint, key, model and window checked once, errors naming the
setting to change (seen: a small server window and a base URL without /v1 both reached the
user as "model unavailable", with no hint and nothing checked at start-up)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from bot.agent.llm import OpenAIChat
from bot.agent.probe import probe
from bot.errors import ConfigError
from bot.testing.fake_openai import FakeOpenAI, error, text
from tests.conftest import make_settings, start_service


def _llm(tmp_path: Path, base_url: str, **over: Any) -> tuple[OpenAIChat, Any]:
    settings = make_settings(tmp_path, base_url, llm_max_retries=0, **over)
    return OpenAIChat(settings), settings


async def test_llama_cpp_props_window_caps_the_setting(tmp_path: Path, embedder: Any) -> None:
    """llama.cpp's /props n_ctx (2,048) below LLM_CONTEXT_WINDOW (16,000) caps the window
    the agent uses, and the note names LLM_CONTEXT_WINDOW."""
    async with FakeOpenAI(routes={"GET /props": {"default_generation_settings": {"n_ctx": 2048}}}) as fake:
        fake.push(text("OK"))
        settings = make_settings(tmp_path, fake.base_url, llm_context_window=16_000)
        svc, _ = await start_service(settings, embedder)
        try:
            report = await svc.probe_llm()
            assert report.window == 2048 and "llama.cpp" in report.window_source
            assert settings.llm_context_window == 2048
            assert settings.prompt_budget > 0 and settings.llm_reply_reserve <= 512
            assert any("LLM_CONTEXT_WINDOW" in n for n in report.notes)
        finally:
            await svc.stop()


async def test_vllm_ollama_and_lm_studio_windows(tmp_path: Path) -> None:
    """vLLM's max_model_len, Ollama's num_ctx and LM Studio's loaded_context_length are read
    where each server tells them."""
    vllm = {"GET /v1/models": {"object": "list", "data": [
        {"id": "gpt-4o-mini", "object": "model", "max_model_len": 8192}]}}
    async with FakeOpenAI(routes=vllm) as fake:
        fake.push(text("OK"))
        llm, settings = _llm(tmp_path, fake.base_url)
        assert (await probe(llm, settings)).window == 8192
        await llm.close()
    ollama = {"POST /api/show": {"parameters": "num_ctx 6144\nstop <|im_end|>",
                                 "model_info": {"qwen2.context_length": 32768}}}
    async with FakeOpenAI(routes=ollama) as fake:
        fake.push(text("OK"))
        llm, settings = _llm(tmp_path, fake.base_url)
        report = await probe(llm, settings)
        assert (report.window, report.window_source) == (6144, "Ollama num_ctx")
        await llm.close()
    lmstudio = {"GET /api/v0/models/gpt-4o-mini": {"id": "gpt-4o-mini", "loaded_context_length": 5000,
                                                   "max_context_length": 32768}}
    async with FakeOpenAI(routes=lmstudio) as fake:
        llm, settings = _llm(tmp_path, fake.base_url)
        assert (await probe(llm, settings)).window == 5000
        await llm.close()


async def test_base_url_without_v1_names_the_setting(tmp_path: Path) -> None:
    """A base URL missing /v1 (404 on /models and on chat) fails at start-up with an error
    naming LLM_BASE_URL and the /v1 suffix."""
    async with FakeOpenAI() as fake:
        llm, settings = _llm(tmp_path, fake.base_url.removesuffix("/v1"))
        with pytest.raises(ConfigError, match=r"LLM_BASE_URL.*/v1"):
            await probe(llm, settings)
        await llm.close()


async def test_unreachable_server_and_bad_key_name_the_setting(tmp_path: Path) -> None:
    """Nothing listening: the error names LLM_BASE_URL; a 401: LLM_API_KEY."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    llm, settings = _llm(tmp_path, f"http://127.0.0.1:{port}/v1")
    with pytest.raises(ConfigError, match="LLM_BASE_URL"):
        await probe(llm, settings)
    await llm.close()
    async with FakeOpenAI(routes={"GET /v1/models": (401, {"error": {"message": "bad key"}})}) as fake:
        llm, settings = _llm(tmp_path, fake.base_url)
        with pytest.raises(ConfigError, match="LLM_API_KEY"):
            await probe(llm, settings)
        await llm.close()


async def test_unknown_model_is_named(tmp_path: Path) -> None:
    """A model the server does not list is named in a note; a chat that fails on it is a
    ConfigError naming LLM_MODEL."""
    async with FakeOpenAI() as fake:
        fake.push(error(404, "model 'llama9' not found"))
        llm, settings = _llm(tmp_path, fake.base_url, llm_model="llama9")
        with pytest.raises(ConfigError, match="LLM_MODEL=llama9"):
            await probe(llm, settings)
        fake.push(text("OK"))
        report = await probe(llm, settings)
        assert any("LLM_MODEL=llama9 is not among" in n for n in report.notes)
        assert report.window is None and "learns it" in report.notes[-1]
        await llm.close()
