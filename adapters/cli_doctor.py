"""``membot doctor``: check every dependency of the bot and say what to fix.

Redis, the vector store, the LLM endpoint (answers, the model exists, it calls tools), the
embedding model and tokenizer files, and each configured platform's token (Slack: its
scopes; Discord: the message-content intent when it is asked for). Each check is bounded
in time; the command exits 1 when any check fails.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from bot.config import NO_LLM, Settings
from bot.errors import MembotError
from bot.ops.logs import redact_text

CHECK_TIMEOUT_S = 60.0
DISCORD_API = "https://discord.com/api/v10"
SLACK_SCOPES = ("app_mentions:read", "chat:write", "im:history", "im:read", "im:write",
                "channels:read", "groups:read", "users:read", "files:write", "commands")
MESSAGE_CONTENT_FLAGS = (1 << 18) | (1 << 19)  # GATEWAY_MESSAGE_CONTENT(_LIMITED)
Status = Literal["ok", "warn", "FAIL"]


@dataclass
class Result:
    name: str
    status: Status
    detail: str
    fix: str = ""


# --- the checks --------------------------------------------------------------------------------------
async def check_redis(settings: Settings) -> Result:
    from bot.stores.redis_store import RedisStore

    store = RedisStore(settings.redis_url, settings.redis_prefix)
    url = redact_text(settings.redis_url)
    try:
        await store.ping()
    except MembotError as exc:
        return Result("redis", "FAIL", f"{url}: {exc}",
                      "start Redis (scripts/ensure-redis starts a local one) or set REDIS_URL")
    finally:
        await store.close()
    return Result("redis", "ok", f"{url} answers")


async def check_vectors(settings: Settings) -> Result:
    from adapters.cli_remote import running_bot
    from bot.memory.embeddings import build_embedder
    from bot.stores.factory import build_vector_store

    where = redact_text(settings.qdrant_url) if settings.qdrant_url else f"embedded engine in {settings.qdrant_path}"
    if not settings.qdrant_url and await running_bot(settings.admin_socket_path) is not None:
        return Result("vectors", "ok", f"{where}, held by the running bot (admin socket answers)")
    store = build_vector_store(settings)
    try:
        await store.start(build_embedder(settings).dim)
        await store.count("recall", "doctor-probe")
    except MembotError as exc:
        return Result("vectors", "FAIL", f"{where}: {exc}",
                      "set QDRANT_URL to a reachable server, or QDRANT_PATH to a writable directory "
                      "no other process holds")
    finally:
        await store.close()
    return Result("vectors", "ok", where)


async def check_llm(settings: Settings) -> list[Result]:
    if not settings.llm_configured:
        return [Result("llm", "FAIL", "no endpoint configured", NO_LLM)]
    from bot.agent.llm import OpenAIChat
    from bot.agent.tools import schemas

    llm = OpenAIChat(settings)
    base = settings.llm_base_url or "api.openai.com"
    try:
        if not await llm.ping(timeout_s=5.0):
            return [Result("llm", "FAIL", f"{base} does not answer",
                           "start the server or fix LLM_BASE_URL (it usually ends in /v1)")]
        send = [t for t in schemas() if t["function"]["name"] == "send_message"]
        started = time.monotonic()
        try:
            answer = await llm.complete(
                [{"role": "user", "content": "Use the send_message tool to say: ok"}], send,
                max_tokens=64)
        except MembotError as exc:
            return [Result("llm", "FAIL", f"{base}, model {settings.llm_model}: {exc}",
                           "check LLM_MODEL (the server's model name), LLM_API_KEY and LLM_BASE_URL")]
        took = time.monotonic() - started
    finally:
        await llm.close()
    out = [Result("llm", "ok", f"{base}, model {settings.llm_model} answered in {took:.1f} s; "
                  f"LLM_CONTEXT_WINDOW={settings.llm_context_window} (not checked against the server)")]
    if answer.tool_calls:
        out.append(Result("llm tools", "ok", "the model calls tools"))
    else:
        out.append(Result("llm tools", "warn", "asked to call send_message, the model answered "
                          "in plain text", "use a model with tool calling (memory edits need it)"))
    return out


async def check_embeddings(settings: Settings) -> Result:
    from bot.memory.embeddings import build_embedder

    embedder = build_embedder(settings)
    where = settings.embedding_model_path or f"EMBEDDING_CACHE_DIR={settings.embedding_cache_dir}"
    if settings.embedding_provider == "openai":
        where = f"{settings.embedding_base_url or settings.llm_base_url or 'api.openai.com'}"
    try:
        load = getattr(embedder, "load", None)
        if load is not None:
            await load()
        await embedder.embed(["doctor"])
    except MembotError as exc:
        return Result("embeddings", "FAIL", str(exc),
                      "run `membot setup-assets` (with a network) or set EMBEDDING_MODEL_PATH")
    finally:
        close = getattr(embedder, "close", None)
        if close is not None:
            await close()
    return Result("embeddings", "ok", f"{settings.embedding_model} ({embedder.dim}-dim) from {where}")


async def check_tokenizer(settings: Settings) -> Result:
    from bot.agent.tokens import TokenCounter

    counter = await asyncio.to_thread(TokenCounter, settings.llm_model)
    if counter.approximate:
        return Result("tokenizer", "warn", f"tiktoken {counter.encoding_name} not found in "
                      f"TIKTOKEN_CACHE_DIR={settings.tiktoken_cache_dir}: counts are approximate",
                      "run `membot setup-assets` or copy tiktoken's files into ../shared/tiktoken_cache")
    return Result("tokenizer", "ok", f"tiktoken {counter.encoding_name} from {settings.tiktoken_cache_dir}")


async def check_slack(settings: Settings) -> Result:
    from slack_sdk.errors import SlackApiError
    from slack_sdk.web.async_client import AsyncWebClient

    assert settings.slack_bot_token is not None
    client = AsyncWebClient(token=settings.slack_bot_token.get_secret_value(), timeout=10,
                            **({"base_url": settings.slack_api_url} if settings.slack_api_url else {}))
    try:
        resp = await client.auth_test()
    except SlackApiError as exc:
        return Result("slack", "FAIL", f"auth.test: {exc.response.get('error')}",
                      "set SLACK_BOT_TOKEN to the app's Bot User OAuth Token (xoxb-...)")
    except Exception as exc:  # network
        return Result("slack", "FAIL", f"Slack API not reachable: {type(exc).__name__}",
                      "check the network (or SLACK_API_URL)")
    granted = {s.strip() for s in (resp.headers.get("x-oauth-scopes") or "").split(",") if s.strip()}
    who = f"bot {resp.get('user')} in team {resp.get('team_id')}"
    if settings.slack_mode == "socket" and settings.slack_app_token is None:
        return Result("slack", "FAIL", f"{who}; SLACK_APP_TOKEN is missing for Socket Mode",
                      "create an app-level token with connections:write (docs/platforms.md)")
    if not granted:
        return Result("slack", "ok", f"{who} (scopes not reported)")
    missing = [s for s in SLACK_SCOPES if s not in granted]
    if missing:
        return Result("slack", "FAIL", f"{who}; missing scopes: {', '.join(missing)}",
                      "add them under OAuth & Permissions and reinstall the app (docs/platforms.md)")
    return Result("slack", "ok", f"{who}, all {len(SLACK_SCOPES)} scopes granted")


async def check_discord(settings: Settings, api: str = DISCORD_API) -> Result:
    import aiohttp

    assert settings.discord_token is not None
    headers = {"Authorization": f"Bot {settings.discord_token.get_secret_value()}"}
    try:
        async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=10)) as http:
            async with http.get(f"{api}/users/@me") as r:
                if r.status == 401:
                    return Result("discord", "FAIL", "the token was refused (401)",
                                  "set DISCORD_TOKEN to the bot token from the Developer Portal")
                me = await r.json() if r.status == 200 else {}
            async with http.get(f"{api}/applications/@me") as r:
                app = await r.json() if r.status == 200 else {}
    except (aiohttp.ClientError, TimeoutError) as exc:
        return Result("discord", "FAIL", f"Discord API not reachable: {type(exc).__name__}",
                      "check the network")
    who = f"bot {me.get('username', '?')}"
    if settings.discord_message_content and not int(app.get("flags") or 0) & MESSAGE_CONTENT_FLAGS:
        return Result("discord", "FAIL", f"{who}; DISCORD_MESSAGE_CONTENT=true but the "
                      "Message Content intent is off", "enable it under Bot -> Privileged Gateway "
                      "Intents, or set DISCORD_MESSAGE_CONTENT=false")
    return Result("discord", "ok", who)


# --- the command -------------------------------------------------------------------------------------
async def _bounded(name: str, check: Callable[[], Awaitable[Any]]) -> list[Result]:
    try:
        out = await asyncio.wait_for(check(), CHECK_TIMEOUT_S)
    except TimeoutError:
        return [Result(name, "FAIL", f"no answer within {CHECK_TIMEOUT_S:g} s")]
    except MembotError as exc:
        return [Result(name, "FAIL", str(exc))]
    return out if isinstance(out, list) else [out]


async def run_checks(settings: Settings) -> list[Result]:
    checks: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
        ("redis", lambda: check_redis(settings)), ("vectors", lambda: check_vectors(settings)),
        ("llm", lambda: check_llm(settings)), ("embeddings", lambda: check_embeddings(settings)),
        ("tokenizer", lambda: check_tokenizer(settings))]
    if settings.slack_bot_token is not None:
        checks.append(("slack", lambda: check_slack(settings)))
    if settings.discord_token is not None:
        checks.append(("discord", lambda: check_discord(settings)))
    out: list[Result] = []
    for name, check in checks:
        out += await _bounded(name, check)
    return out


async def cmd_doctor(settings: Settings) -> int:
    results = await run_checks(settings)
    if settings.slack_bot_token is None and settings.discord_token is None:
        results.append(Result("platforms", "ok", "no platform tokens: `membot run` opens the "
                              "terminal chat (set DISCORD_TOKEN or SLACK_BOT_TOKEN for a bot)"))
    for r in results:
        print(f"{r.status:4s}  {r.name:11s} {r.detail}")
        if r.fix and r.status != "ok":
            print(f"{'':17s}fix: {r.fix}")
    failed = sum(r.status == "FAIL" for r in results)
    print(f"{failed} problem(s)" if failed else "all checks passed")
    return 1 if failed else 0
