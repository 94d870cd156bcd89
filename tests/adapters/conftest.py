"""Fixtures for the platform adapters: a started core (real Redis, embedded Qdrant, fake
LLM) with the Slack adapter in HTTP mode against a fake Slack Web API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.testing.slack_api import FakeSlack
from bot.testing.slack_payloads import SECRET, signed_headers
from tests.conftest import make_settings, start_service


@dataclass
class SlackEnv:
    svc: Any
    adapter: Any
    api: FakeSlack
    fake: Any  # the fake LLM
    http: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.adapter.port}/slack/events"

    async def post(self, body: str, content_type: str = "application/json",
                   secret: str = SECRET) -> int:
        """POST a signed request to the adapter; returns the HTTP status."""
        async with self.http.post(self.url, data=body.encode(),
                                  headers=signed_headers(body, content_type, secret)) as resp:
            await resp.read()
            return resp.status

    async def post_form(self, body: str) -> int:
        return await self.post(body, "application/x-www-form-urlencoded")


async def wipe(settings: Any) -> None:
    from bot.stores.redis_store import RedisStore

    cleaner = RedisStore(settings.redis_url, settings.redis_prefix)
    await cleaner.delete_prefix()
    await cleaner.close()


@asynccontextmanager
async def slack_env(tmp_path: Path, fake_llm: Any, embedder: Any,
                    api_class: type[FakeSlack] = FakeSlack) -> AsyncIterator[SlackEnv]:
    """The core and the Slack adapter in HTTP mode against ``api_class`` (a FakeSlack)."""
    from adapters.slack_adapter import SlackAdapter

    async with api_class(admins={"UADM"}) as api:
        settings = make_settings(tmp_path, fake_llm.base_url, slack_bot_token="xoxb-test-token",
                                 slack_signing_secret=SECRET, slack_mode="http",
                                 slack_api_url=api.api_url, slack_admin_ids="UOPS")
        svc, _ = await start_service(settings, embedder)
        adapter = SlackAdapter(svc)
        await adapter.start(host="127.0.0.1", port=0)
        async with aiohttp.ClientSession() as http:
            yield SlackEnv(svc, adapter, api, fake_llm, http)
        await adapter.close()
        await svc.stop()
        await wipe(settings)


@pytest.fixture
async def slack(tmp_path: Path, fake_llm: Any, embedder: Any) -> AsyncIterator[SlackEnv]:
    async with slack_env(tmp_path, fake_llm, embedder) as env:
        yield env


class Scripted:
    """Queues the agent's next answer on the fake LLM."""

    fake: Any

    def say(self, text: str) -> None:
        from bot.testing.fake_openai import tool_call

        self.fake.push(tool_call("send_message", message=text, request_heartbeat=False))


@dataclass
class SocketEnv(Scripted):
    svc: Any
    adapter: Any
    slack: Any  # bot.testing.slack_socket.SlackEmulator
    fake: Any  # the fake LLM


@pytest.fixture
async def slack_socket(tmp_path: Path, fake_llm: Any, embedder: Any) -> AsyncIterator[SocketEnv]:
    """The Slack adapter in Socket Mode (the default) against the Socket Mode emulator."""
    from adapters.slack_adapter import SlackAdapter
    from bot.testing.slack_socket import SlackEmulator

    async with SlackEmulator(admins={"UADM"}) as emu:
        settings = make_settings(tmp_path, fake_llm.base_url, slack_bot_token="xoxb-test-token",
                                 slack_app_token="xapp-test-token", slack_api_url=emu.api_url,
                                 slack_admin_ids="UOPS")
        svc, _ = await start_service(settings, embedder)
        adapter = SlackAdapter(svc)
        await adapter.start()
        await emu.wait_connections(1)
        yield SocketEnv(svc, adapter, emu, fake_llm)
        await adapter.close()
        await svc.stop()
        await wipe(settings)


@dataclass
class DiscordEnv(Scripted):
    svc: Any
    emu: Any  # bot.testing.discord_emulator.DiscordEmulator
    fake: Any  # the fake LLM
    stop: Any  # asyncio.Event ending adapters.discord_adapter.run
    task: Any


def point_discord_at(monkeypatch: pytest.MonkeyPatch, emu: Any) -> None:
    """discord.py's REST base and default gateway, aimed at the emulator (its only edge)."""
    import discord.gateway
    import discord.http
    import yarl

    monkeypatch.setattr(discord.http.Route, "BASE", emu.api_base)
    monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(emu.gateway_url))


async def start_discord(settings: Any, embedder: Any, emu: Any, fake_llm: Any) -> DiscordEnv:
    """`membot sync-commands` then the real run() loop against the emulator, until ready."""
    import asyncio

    from adapters import discord_adapter

    assert await discord_adapter.sync_commands(settings, None) == 0
    svc, _ = await start_service(settings, embedder)
    stop = asyncio.Event()
    task = asyncio.create_task(discord_adapter.run(svc, stop, drain_s=2.0))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while not ("discord" in svc.checks and await svc.checks["discord"]()):
        assert loop.time() < deadline and not task.done(), "discord client never got ready"
        await asyncio.sleep(0.05)
    return DiscordEnv(svc, emu, fake_llm, stop, task)


async def stop_discord(env: DiscordEnv, settings: Any) -> None:
    import asyncio

    env.stop.set()
    await asyncio.wait_for(env.task, 20)
    await env.svc.stop()
    await wipe(settings)


@pytest.fixture
async def discord_env(tmp_path: Path, fake_llm: Any, embedder: Any,
                      monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[DiscordEnv]:
    """The Discord adapter's real run() with discord.py connected to the local emulator."""
    from bot.testing.discord_emulator import DiscordEmulator

    async with DiscordEmulator() as emu:
        point_discord_at(monkeypatch, emu)
        operator = emu.add_user("operator", member=False)
        settings = make_settings(tmp_path, fake_llm.base_url, discord_token=emu.token,
                                 discord_admin_ids=str(operator.id))
        env = await start_discord(settings, embedder, emu, fake_llm)
        env.operator = operator  # type: ignore[attr-defined]
        yield env
        await stop_discord(env, settings)
