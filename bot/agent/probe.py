"""The start-up probe: is the LLM endpoint there, does it know the model, how large is its
window? Run once by ``membot run`` / ``membot chat`` before any user is served.

``GET /models`` first; when it does not list LLM_MODEL (or is missing: a base URL without
``/v1``), one 1-token chat call decides whether the endpoint and model really work.

Windows, where a server tells them:
- llama.cpp's server: ``GET /props`` -> ``default_generation_settings.n_ctx``;
- vLLM: ``GET /v1/models`` -> ``data[].max_model_len``;
- Ollama: ``POST /api/show`` -> ``num_ctx`` in ``parameters`` (else Ollama's default, which its
  OpenAI-compatible endpoint silently truncates to);
- LM Studio: ``GET /api/v0/models/{model}`` -> ``loaded_context_length``.
llama-cpp-python tells none of these; its first overflow error names the window, and the
agent loop caps the window then (see ``ContextManager.cap_window``).

Every error raised here is a ConfigError naming the setting to change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.config import Settings
from bot.errors import ConfigError, LLMError
from bot.protocols import Completion

OLLAMA_DEFAULT_CTX = 4_096  # what Ollama uses when the model sets no num_ctx
PROBE_TIMEOUT_S = 5.0


class Probed(Protocol):
    """What the probe needs of the LLM client (``OpenAIChat`` implements it)."""

    base_url: str

    async def fetch_json(self, url: str, body: dict[str, Any] | None = None,
                         timeout_s: float = PROBE_TIMEOUT_S) -> tuple[int, Any]: ...

    async def complete(self, messages: list[dict[str, Any]],
                       tools: list[dict[str, Any]] | None = None, *,
                       max_tokens: int | None = None) -> Completion: ...


@dataclass
class ProbeReport:
    models: list[str] = field(default_factory=list)
    window: int | None = None  # the server's context window, when it tells it
    window_source: str = ""
    notes: list[str] = field(default_factory=list)  # warnings for the log, settings named


async def probe(llm: Probed, settings: Settings) -> ProbeReport:
    """Check the endpoint and the model once; find the server's window. Raises ConfigError."""
    report = ProbeReport()
    url = llm.base_url
    try:
        status, listing = await llm.fetch_json("/models")
    except LLMError as exc:
        raise ConfigError(f"cannot reach the LLM server at LLM_BASE_URL={url} ({exc}); start "
                          "the server or correct LLM_BASE_URL") from None
    if status in (401, 403):
        raise ConfigError(f"the LLM server at {url} refused the API key (HTTP {status}): "
                          "check LLM_API_KEY / OPENAI_API_KEY")
    if status == 404:
        report.notes.append(f"GET {url}/models answered 404: if chat fails, LLM_BASE_URL "
                            "probably lacks the /v1 suffix (e.g. http://localhost:8080/v1)")
    entries = listing.get("data", []) if status == 200 and isinstance(listing, dict) else []
    report.models = [str(e.get("id")) for e in entries if isinstance(e, dict)]
    listed = settings.llm_model in report.models
    if report.models and not listed:
        report.notes.append(f"LLM_MODEL={settings.llm_model} is not among the server's models "
                            f"({', '.join(report.models[:5])}); set LLM_MODEL to one of them")
    if not listed:  # the listing did not vouch for the model: one tiny chat decides
        await _check_chat(llm, settings)
    await _find_window(llm, settings, report, entries)
    if report.window and report.window < settings.llm_context_window:
        report.notes.append(
            f"the server's window is {report.window} tokens ({report.window_source}), below "
            f"LLM_CONTEXT_WINDOW={settings.llm_context_window}: membot uses {report.window}; "
            f"set LLM_CONTEXT_WINDOW={report.window} or give the server a larger window")
    return report


async def _check_chat(llm: Probed, settings: Settings) -> None:
    """One tiny completion: the chat endpoint and the model really answer."""
    try:
        await llm.complete([{"role": "user", "content": "Reply with OK."}], max_tokens=1)
    except LLMError as exc:
        raise ConfigError(f"the LLM server at LLM_BASE_URL={llm.base_url} failed a test chat "
                          f"with LLM_MODEL={settings.llm_model}: {exc}") from None


async def _find_window(llm: Probed, settings: Settings, report: ProbeReport,
                       entries: list[Any]) -> None:
    mine = [e for e in entries if isinstance(e, dict)
            and (e.get("id") == settings.llm_model or len(entries) == 1)]
    for e in mine:  # vLLM
        n = _int(e.get("max_model_len"))
        if n:
            report.window, report.window_source = n, "vLLM max_model_len"
            return
    root = re.sub(r"/v1/?$", "", llm.base_url.rstrip("/"))
    status, props = await _quiet(llm, f"{root}/props")  # llama.cpp server
    if status == 200 and isinstance(props, dict):
        gen = props.get("default_generation_settings")
        n = _int(gen.get("n_ctx") if isinstance(gen, dict) else None) or _int(props.get("n_ctx"))
        if n:
            report.window, report.window_source = n, "llama.cpp /props n_ctx"
            return
    status, show = await _quiet(llm, f"{root}/api/show", {"model": settings.llm_model})
    if status == 200 and isinstance(show, dict):  # Ollama
        found = re.search(r"num_ctx\s+(\d+)", str(show.get("parameters", "")))
        model_ctx = next((_int(v) for k, v in (show.get("model_info") or {}).items()
                          if str(k).endswith(".context_length")), None)
        if found:
            report.window, report.window_source = int(found.group(1)), "Ollama num_ctx"
        else:
            report.window = min(model_ctx or OLLAMA_DEFAULT_CTX, OLLAMA_DEFAULT_CTX)
            report.window_source = "Ollama default num_ctx (raise it with OLLAMA_CONTEXT_LENGTH)"
        return
    status, lms = await _quiet(llm, f"{root}/api/v0/models/{settings.llm_model}")
    if status == 200 and isinstance(lms, dict):  # LM Studio
        n = _int(lms.get("loaded_context_length")) or _int(lms.get("max_context_length"))
        if n:
            report.window, report.window_source = n, "LM Studio loaded_context_length"
            return
    report.notes.append("the server does not report its window; membot learns it from the "
                        "first context-overflow error (keep LLM_CONTEXT_WINDOW at or below it)")


async def _quiet(llm: Probed, url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    try:
        return await llm.fetch_json(url, body)
    except LLMError:
        return 0, None


def _int(value: Any) -> int | None:
    try:
        n = int(value)
    except (TypeError, ValueError):
        return None
    return n if n > 0 else None
