"""Adapter lifecycles: ``run(service, stop)`` registers its outbox and readiness check and
returns once ``stop`` is set; command sync refuses to run without a token."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from adapters import discord_adapter, slack_adapter
from bot.errors import ConfigError
from bot.testing.slack_api import FakeSlack
from bot.testing.slack_payloads import SECRET
from tests.adapters.conftest import wipe
from tests.conftest import Harness, make_settings


async def test_discord_run_returns_after_stop(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """run() serves until stop is set, then closes the client and returns (SIGTERM path)."""
    async def fake_start(self: discord_adapter.MembotBot, token: str) -> None:
        assert token == "discord-test-token"
        while not self.is_closed():  # noqa: ASYNC110 (the gateway connection, until close())
            await asyncio.sleep(0.01)

    monkeypatch.setattr(discord_adapter.MembotBot, "start", fake_start)
    harness.svc.settings.discord_token = SecretStr("discord-test-token")
    stop = asyncio.Event()
    task = asyncio.create_task(discord_adapter.run(harness.svc, stop, drain_s=1.0))
    await asyncio.sleep(0.1)
    assert harness.svc.router.has("discord") and "discord" in harness.svc.checks
    assert await harness.svc.checks["discord"]() is False  # not connected to a gateway
    stop.set()
    await asyncio.wait_for(task, 5)


async def test_sync_commands_needs_a_token(tmp_path: Path) -> None:
    """`membot sync-commands` explains a missing DISCORD_TOKEN instead of crashing."""
    settings = make_settings(tmp_path, "http://127.0.0.1:9/v1")
    with pytest.raises(ConfigError, match="DISCORD_TOKEN"):
        await discord_adapter.sync_commands(settings, None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_slack_http_run_serves_until_stop(tmp_path: Path, fake_llm: Any, embedder: Any) -> None:
    """In HTTP mode run() listens on SLACK_PORT, reports ready, and stops on the signal."""
    from tests.conftest import start_service

    async with FakeSlack() as api:
        port = _free_port()
        settings = make_settings(tmp_path, fake_llm.base_url, slack_bot_token="xoxb-test",
                                 slack_signing_secret=SECRET, slack_mode="http",
                                 slack_port=port, slack_api_url=api.api_url)
        svc, _ = await start_service(settings, embedder)
        try:
            stop = asyncio.Event()
            task = asyncio.create_task(slack_adapter.run(svc, stop))
            for _ in range(200):  # ready once it listens, however loaded the machine is
                if "slack" in svc.checks and await svc.checks["slack"]():
                    break
                await asyncio.sleep(0.05)
            assert await svc.checks["slack"]() is True
            with socket.create_connection(("127.0.0.1", port), timeout=2):
                pass
            stop.set()
            await asyncio.wait_for(task, 5)
        finally:
            await svc.stop()
            await wipe(settings)
