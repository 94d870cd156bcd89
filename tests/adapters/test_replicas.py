"""Two service replicas sharing Redis, both platforms live: Discord with one gateway shard
per replica, Slack with one Socket Mode connection per replica. Every message is answered
exactly once, whichever replica received it and whichever ran the step."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.testing.discord_emulator import DiscordEmulator
from bot.testing.fake_openai import echo
from bot.testing.slack_payloads import dm, mention
from bot.testing.slack_socket import SlackEmulator
from tests.adapters.conftest import point_discord_at, start_discord, stop_discord, wipe
from tests.conftest import make_settings

pytestmark = pytest.mark.slow


@pytest.fixture
async def replicas(tmp_path: Path, fake_llm: Any, embedder: Any,
                   monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Any, Any, list[Any]]]:
    from adapters.slack_adapter import SlackAdapter

    fake_llm.default = echo
    async with DiscordEmulator(shards=2) as emu, SlackEmulator() as slack:
        while len({(g.id >> 22) % 2 for g in emu.guilds}) < 2:  # a guild on each shard
            emu.add_guild(f"Server {len(emu.guilds)}")
        point_discord_at(monkeypatch, emu)
        prefix = make_settings(tmp_path, fake_llm.base_url).redis_prefix
        envs, adapters = [], []
        for shard in (0, 1):
            settings = make_settings(
                tmp_path / f"replica{shard}", fake_llm.base_url, redis_prefix=prefix,
                discord_token=emu.token, discord_shard_count=2, discord_shard_id=shard,
                slack_bot_token="xoxb-test", slack_app_token="xapp-test", slack_api_url=slack.api_url)
            env = await start_discord(settings, embedder, emu, fake_llm)
            adapter = SlackAdapter(env.svc)
            await adapter.start()
            envs.append((env, settings))
            adapters.append(adapter)
        await slack.wait_connections(2)
        yield emu, slack, [e for e, _ in envs]
        for adapter in adapters:
            await adapter.close()
        for env, settings in envs:
            await stop_discord(env, settings)
        await wipe(envs[0][1])


async def test_every_message_answered_once_across_replicas(replicas: tuple[Any, Any, list[Any]]) -> None:
    """12 Discord messages over two shards' guilds and DMs, 12 Slack events over two
    sockets: each gets exactly one reply, with its own text."""
    emu, slack, envs = replicas
    sessions = list(emu.gateway.sessions.values())
    assert sorted(s.shard for s in sessions) == [(0, 2), (1, 2)]
    # one guild owned by each shard (emu.guilds[0] and [1] may share a shard)
    guilds = [emu.guilds_of((shard, 2))[0] for shard in (0, 1)]
    said = []
    for i in range(12):
        user = emu.add_user(f"user{i}", guild=guilds[i % 2])
        word = f"discord-msg-{i}"
        where = emu.dm_with(user) if i % 3 == 0 else guilds[i % 2].channels[0]
        await emu.user_message(where, user, word, mention_bot=i % 3 != 0)
        said.append(word)
        event = dm if i % 2 else mention
        await slack.event(event(f"slack-msg-{i}", ts=f"17000000{i:02d}.000100", user=f"U{i}"))
    await emu.wait(lambda: len(emu.sent) >= 12, timeout_s=60)
    await slack.wait(lambda: len(slack.posts()) >= 12, timeout_s=60)
    await asyncio.sleep(1.0)
    discord_answers = Counter(m for msg in emu.sent for m in re.findall(r"discord-msg-\d+", msg["content"]))
    slack_answers = Counter(m for p in slack.posts() for m in re.findall(r"slack-msg-\d+", p["markdown_text"]))
    assert discord_answers == Counter(said)
    assert slack_answers == Counter(f"slack-msg-{i}" for i in range(12))
    assert {e.acked_on for e in slack.envelopes} == {c.id for c in slack.connections}  # both sockets used
    assert all(s.buffer[-1]["s"] > 2 for s in sessions)  # both shards got traffic
    assert slack.violations == [] and slack.timeouts == []
