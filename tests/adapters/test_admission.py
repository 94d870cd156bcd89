"""Who may talk to the bot: ALLOWED_TEAMS / ALLOWED_GUILDS, DM_ONLY and per-channel opt-in,
through the real Slack app and the Discord bot's own handlers."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from adapters.discord_adapter import MembotBot
from adapters.discord_commands import MemoryCog
from bot.testing.fake_openai import tool_call
from bot.testing.slack_payloads import command_body, dm, event_body, mention
from tests.adapters.conftest import SlackEnv
from tests.adapters.discord_fakes import FakeGuild, FakeInteraction, FakeUser, Perms
from tests.conftest import Harness


def _posts(slack: SlackEnv) -> int:
    return len(slack.api.calls_to("chat.postMessage"))


async def _answered(slack: SlackEnv, body: str) -> bool:
    """Post an event; True when the bot answered it (within a short wait)."""
    before, asked = _posts(slack), len(slack.fake.requests)
    slack.fake.push(tool_call("send_message", message="hi", request_heartbeat=False))
    assert await slack.post(body) == 200
    for _ in range(60):
        if _posts(slack) > before:
            return True
        await asyncio.sleep(0.05)
    assert len(slack.fake.requests) == asked  # refused before any model call
    slack.fake.clear()
    return False


async def test_other_workspaces_are_ignored(slack: SlackEnv) -> None:
    """With ALLOWED_TEAMS set, events of other workspaces (DMs too) reach no model."""
    slack.svc.settings.allowed_teams = "T9"
    assert not await _answered(slack, event_body(dm("hello"), event_id="Ev1"))
    slack.svc.settings.allowed_teams = "T9,T1"
    assert await _answered(slack, event_body(dm("hello", ts="1700000000.000200"), event_id="Ev2"))


async def test_dm_only_mode(slack: SlackEnv) -> None:
    """DM_ONLY: channel mentions are ignored, DMs answered."""
    slack.svc.settings.dm_only = True
    assert not await _answered(slack, event_body(mention("<@UBOT> hi"), event_id="Ev1"))
    assert await _answered(slack, event_body(dm("hi"), event_id="Ev2"))


async def test_channel_opt_in_by_workspace_admins(slack: SlackEnv) -> None:
    """CHANNEL_OPT_IN: a channel is answered only after a workspace admin enabled it;
    members cannot enable channels."""
    slack.svc.settings.channel_opt_in = True
    assert not await _answered(slack, event_body(mention("<@UBOT> hi"), event_id="Ev1"))
    assert await slack.post_form(command_body("channels enable", "U1", slack.api.response_url("m"))) == 200
    await slack.api.wait(lambda: len(slack.api.responses) == 1)
    assert "Only this server's admins" in slack.api.responses[0]["text"]
    assert await slack.post_form(command_body("channels enable", "UADM", slack.api.response_url("a"))) == 200
    await slack.api.wait(lambda: len(slack.api.responses) == 2)
    assert "C1" in slack.api.responses[1]["text"]
    assert await _answered(slack, event_body(mention("<@UBOT> hi", ts="1700000002.000300"),
                                             event_id="Ev2"))


@dataclass
class LeavingGuild:
    id: int
    left: list[int] = field(default_factory=list)

    async def leave(self) -> None:
        self.left.append(self.id)


async def test_discord_leaves_servers_not_allowed(harness: Harness) -> None:
    """ALLOWED_GUILDS: joining another server makes the bot leave it; allowed ones stay."""
    harness.svc.settings.allowed_guilds = "500"
    bot = MembotBot(harness.svc.settings, harness.svc)
    other, mine = LeavingGuild(id=600), LeavingGuild(id=500)
    await bot.on_guild_join(other)  # type: ignore[arg-type]
    await bot.on_guild_join(mine)  # type: ignore[arg-type]
    assert other.left == [600] and mine.left == []
    await bot.close()


async def test_discord_channels_command_is_for_server_admins(harness: Harness) -> None:
    """/bot channels enable: refused to members, stored for server admins."""
    cog = MemoryCog(harness.svc, frozenset())
    guild = FakeGuild(id=500)
    member = FakeInteraction(user=FakeUser(id=1, guild=guild, guild_permissions=Perms()), guild=guild)
    member.channel_id = 42  # type: ignore[attr-defined]
    await cog.channels.callback(cog, member, action="enable")  # type: ignore[arg-type]
    assert "Only this server's admins" in member.texts()[0]
    admin = FakeInteraction(user=FakeUser(id=2, guild=guild, guild_permissions=Perms(manage_guild=True)),
                            guild=guild)
    admin.channel_id = 42  # type: ignore[attr-defined]
    await cog.channels.callback(cog, admin, action="enable")  # type: ignore[arg-type]
    assert "<#42>" in admin.texts()[0]
    assert await harness.svc.admission.channels("discord", "500") == frozenset({"42"})
