"""A local Discord (REST + gateway) that the real discord.py client runs against unmodified.

    async with DiscordEmulator() as discord_emu:
        # point the library at it: discord.http.Route.BASE = discord_emu.api_base and
        # DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(discord_emu.gateway_url)
        await discord_emu.user_message(discord_emu.dm_with(alice), alice, "hi")
        await discord_emu.slash(alice, "memory show", guild=discord_emu.guild)

The world: one application and bot user, a guild "Test Server" with roles (@everyone as a
member, "Admin" with Administrator, "Mods" with Manage Server), a #general text channel and
a public thread, and users added with ``add_user``. What the bot sends is recorded in
``sent`` (channel messages), ``interactions`` (callbacks, follow-ups, edits) and
``typing``. The rules checked, the faults that can be injected and what is not emulated
are listed in ``bot.testing.discord_gateway`` (gateway) and ``bot.testing.discord_rest``.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.testing.discord_gateway import DIRECT_MESSAGES, GUILD_MESSAGES, GUILDS, Gateway
from bot.testing.discord_models import (
    ADMINISTRATOR,
    DM,
    MANAGE_GUILD,
    MEMBER_PERMS,
    PUBLIC_THREAD,
    Channel,
    Guild,
    Role,
    User,
    message_payload,
    snowflake,
)
from bot.testing.discord_rest import (
    Fault,
    Interaction,
    Rest,
    public,
)
from bot.testing.discord_routes import Routes

TOKEN = "emulated-discord-token"
OPTION_TYPES = {str: 3, int: 4, bool: 5}


@dataclass(frozen=True)
class UserOption:
    """A user option value for ``slash`` (resolved as a member when in the guild)."""

    user: User


class DiscordEmulator(Routes):
    def __init__(self, *, shards: int = 1, heartbeat_ms: int = 2_000, privileged: int = 0) -> None:
        self.token = TOKEN
        self.app_id = snowflake()
        self.bot = User(self.app_id, "membot", bot=True)
        self.users: dict[int, User] = {self.bot.id: self.bot}
        self.shards = shards
        self.guilds: list[Guild] = []
        self.channels: dict[int, Channel] = {}
        self.messages: dict[int, dict[str, Any]] = {}
        self.sent: list[dict[str, Any]] = []  # messages the bot posted to channels
        self.typing: list[int] = []
        self.commands: dict[str, list[dict[str, Any]]] = {}  # "global" / guild id -> definitions
        self.interactions: dict[int, Interaction] = {}
        self.gateway = Gateway(self, TOKEN, heartbeat_ms, privileged)
        self.rest = Rest(self)
        self.guild = self.add_guild("Test Server")
        self.general = self.guild.channels[0]
        self.thread = self.guild.channels[1]
        self._runner: web.AppRunner | None = None
        self.url = ""

    # --- server --------------------------------------------------------------------------
    async def __aenter__(self) -> DiscordEmulator:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_get("/gateway", self.gateway.handle)
        self.rest.add_routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        self.gateway.url = self.gateway_url
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.gateway.close_all()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_base(self) -> str:
        return self.url + "/api/v10"

    @property
    def gateway_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/gateway"

    # --- the world ----------------------------------------------------------------------
    def add_guild(self, name: str) -> Guild:
        gid = snowflake()
        guild = Guild(gid, name, owner_id=0, roles=[
            Role(gid, "@everyone", MEMBER_PERMS, 0), Role(snowflake(), "Admin", ADMINISTRATOR, 2),
            Role(snowflake(), "Mods", MANAGE_GUILD, 1)])
        general = Channel(snowflake(), "general", guild_id=gid)
        thread = Channel(snowflake(), "planning", PUBLIC_THREAD, guild_id=gid, parent_id=general.id)
        guild.channels += [general, thread]
        guild.members[self.bot.id] = []
        for ch in guild.channels:
            self.channels[ch.id] = ch
        self.guilds.append(guild)
        return guild

    def role(self, name: str, guild: Guild | None = None) -> int:
        return next(r.id for r in (guild or self.guild).roles if r.name == name)

    def add_user(self, name: str, *, roles: tuple[str, ...] = (), member: bool = True,
                 guild: Guild | None = None) -> User:
        user = User(snowflake(), name)
        self.users[user.id] = user
        g = guild or self.guild
        if member:
            g.members[user.id] = [self.role(r, g) for r in roles]
        return user

    def guilds_of(self, shard: tuple[int, int]) -> list[Guild]:
        return [g for g in self.guilds if (g.id >> 22) % shard[1] == shard[0]]

    def guild_of(self, channel: Channel) -> Guild | None:
        return next((g for g in self.guilds if g.id == channel.guild_id), None)

    def dm_with(self, user: User) -> Channel:
        for ch in self.channels.values():
            if ch.type == DM and ch.recipient is user:
                return ch
        ch = Channel(snowflake(), "", DM, recipient=user)
        self.channels[ch.id] = ch
        return ch

    def fail(self, method: str, path: str, status: int, *, code: int = 0, retry_after: float = 0.0,
             times: int = 1, delay_s: float = 0.0) -> None:
        """Answer the next ``times`` requests matching (method, path regex) with ``status``
        (429 with ``retry_after``; 403 with code 50001/50013; 5xx), or with ``status=200``
        just ``delay_s`` late."""
        self.rest.faults.append(Fault(method, re.compile(path), status, code, retry_after, times, delay_s))

    # --- users act ----------------------------------------------------------------------
    async def user_message(self, channel: Channel, author: User, content: str, *,
                           mention_bot: bool = False) -> dict[str, Any]:
        """A person posts; MESSAGE_CREATE goes to the shard that owns the channel."""
        guild = self.guild_of(channel)
        mentions = [self.bot] if mention_bot else []
        if mention_bot:
            content = f"<@{self.bot.id}> {content}"
        msg = message_payload(snowflake(), channel, author, content, guild=guild, mentions=mentions)
        self.messages[int(msg["id"])] = msg
        intent = GUILD_MESSAGES if guild else DIRECT_MESSAGES
        await self.gateway.dispatch("MESSAGE_CREATE", msg, guild.id if guild else None, intent,
                                    bot_mentioned=mention_bot)
        return msg

    async def edit_message(self, msg: dict[str, Any], content: str) -> None:
        msg |= {"content": content, "edited_timestamp": msg["timestamp"]}
        gid = int(msg["guild_id"]) if "guild_id" in msg else None
        await self.gateway.dispatch("MESSAGE_UPDATE", msg, gid, GUILD_MESSAGES if gid else DIRECT_MESSAGES,
                                    bot_mentioned=bool(msg["mentions"]))

    async def delete_message(self, msg: dict[str, Any]) -> None:
        gid = int(msg["guild_id"]) if "guild_id" in msg else None
        data = {"id": msg["id"], "channel_id": msg["channel_id"], **({"guild_id": str(gid)} if gid else {})}
        await self.gateway.dispatch("MESSAGE_DELETE", data, gid, GUILD_MESSAGES if gid else DIRECT_MESSAGES)

    async def slash(self, user: User, command: str, /, *, guild: Guild | None = None,
                    channel: Channel | None = None, **options: Any) -> Interaction:
        """Invoke a registered chat command ("memory show") with options, as Discord does."""
        words = command.split()
        definition = self._registered(words[0], guild)
        data: dict[str, Any] = {"id": definition["id"], "name": words[0], "type": 1}
        resolved: dict[str, Any] = {}
        opts = [self._option(k, v, guild, resolved) for k, v in options.items() if v is not None]
        for word in reversed(words[1:]):
            opts = [{"type": 1, "name": word, "options": opts}]
        data["options"] = opts
        if resolved:
            data["resolved"] = resolved
        return await self._interact(2, data, user, guild, channel)

    async def click(self, user: User, message: dict[str, Any], label: str) -> Interaction:
        """Press the button labelled ``label`` on a message the bot sent."""
        button = next(c for row in message.get("components") or [] for c in row["components"]
                      if c.get("label") == label)
        data = {"custom_id": button["custom_id"], "component_type": 2}
        guild = next((g for g in self.guilds if str(g.id) == message.get("guild_id")), None)
        return await self._interact(3, data, user, guild, None, message=public(message))

    def _registered(self, name: str, guild: Guild | None) -> dict[str, Any]:
        pool = self.commands.get("global", []) + (self.commands.get(str(guild.id), []) if guild else [])
        for cmd in pool:
            if cmd["name"] == name:
                return cmd
        raise AssertionError(f"/{name} is not registered (sync the command tree first)")

    def _option(self, name: str, value: Any, guild: Guild | None, resolved: dict[str, Any]) -> dict[str, Any]:
        if isinstance(value, UserOption):
            u = value.user
            resolved.setdefault("users", {})[str(u.id)] = u.payload()
            if guild is not None and u.id in guild.members:
                member = guild.member_payload(u, with_user=False)
                member["permissions"] = str(guild.permissions(u.id))
                resolved.setdefault("members", {})[str(u.id)] = member
            return {"name": name, "type": 6, "value": str(u.id)}
        return {"name": name, "type": OPTION_TYPES[type(value)], "value": value}

    async def _interact(self, kind: int, data: dict[str, Any], user: User, guild: Guild | None,
                        channel: Channel | None, message: dict[str, Any] | None = None) -> Interaction:
        channel = channel or (self.general if guild else self.dm_with(user))
        iid, token = snowflake(), f"itoken-{uuid.uuid4().hex}"
        payload: dict[str, Any] = {
            "id": str(iid), "application_id": str(self.app_id), "type": kind, "data": data,
            "token": token, "version": 1, "channel_id": str(channel.id), "channel": channel.payload(),
            "locale": "en-US", "app_permissions": str(MEMBER_PERMS), "entitlements": [],
            "authorizing_integration_owners": {"0": str(guild.id) if guild else "0"},
            "context": 0 if guild else 1, "attachment_size_limit": 8 * 1024 * 1024}
        if guild is not None:
            member = guild.member_payload(user)
            member["permissions"] = str(guild.permissions(user.id))
            payload |= {"guild_id": str(guild.id), "member": member, "guild_locale": "en-US",
                        "guild": {"id": str(guild.id), "locale": "en-US", "features": []}}
        else:
            payload["user"] = user.payload()
        if message is not None:
            payload["message"] = message
        inter = Interaction(iid, token, payload, time.monotonic(), followups=[])
        self.interactions[iid] = inter
        await self.gateway.dispatch("INTERACTION_CREATE", payload, guild.id if guild else None, GUILDS)
        return inter

    async def wait(self, pred: Any, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not pred():
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met; requests={self.rest.requests[-8:]}")
            await asyncio.sleep(0.02)


__all__ = ["TOKEN", "DiscordEmulator", "UserOption"]
