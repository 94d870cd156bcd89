"""The Discord adapter (discord.py 2.x): DMs and mentions in, replies and slash commands out.

``run(service, stop)`` connects, serves until ``stop`` is set, then lets in-flight steps
deliver and closes the client. ``sync_commands`` pushes the slash command tree once (it
never happens on start). Works without the privileged message-content intent; see
docs/platforms.md for the portal settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

import discord
from discord.ext import commands

from adapters.discord_commands import MemoryCog
from adapters.discord_inbound import message_event
from adapters.discord_knowledge import KnowledgeCog
from adapters.discord_outbox import DiscordOutbox
from adapters.render import parse_ids
from bot.errors import ConfigError, MembotError

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.events import Event
    from bot.service import Service

log = logging.getLogger("membot.discord")

# discord.py waits out a 429 up to this long itself; a longer wait raises RateLimited and
# the reply goes to the background retry instead of holding the worker
RATELIMIT_WAIT_S = 30.0
UNAVAILABLE = "Sorry, I can't take messages right now. Please try again in a minute."


def intents(content_intent: bool) -> discord.Intents:
    """Guilds, guild and DM messages; message content only when asked for (privileged)."""
    it = discord.Intents.none()
    it.guilds = it.guild_messages = it.dm_messages = True
    it.message_content = content_intent
    return it


class MessageHandler:
    """Turns addressed messages into journaled events, with a typing indicator."""

    def __init__(self, service: Service, outbox: DiscordOutbox, content_intent: bool) -> None:
        self.service = service
        self.outbox = outbox
        self.content_intent = content_intent

    async def handle(self, message: Any, bot_id: int) -> str:
        """Returns the submit status ("ignored" for messages not meant for the bot)."""
        event = message_event(message, bot_id, self.content_intent)
        if event is None:
            return "ignored"
        return await self.submit(event, message.channel)

    async def submit(self, event: Event, channel: Any) -> str:
        typing = self.outbox.typing
        started = event.event_id not in typing  # a redelivery keeps the first one's loop
        if started:
            typing.start(event.event_id, channel)  # stopped by outbox.completed
        status: str
        try:
            status = await self.service.submit(event)
        except MembotError:
            log.exception("could not journal a Discord message")
            status = "error"
        if status != "accepted" and started:
            typing.stop(event.event_id)
        if status in ("closed", "error"):
            with contextlib.suppress(discord.HTTPException):
                await channel.send(UNAVAILABLE)
        log.info("discord message %s: %s", event.event_id, status)
        return status


class MembotBot(commands.Bot):
    def __init__(self, settings: Settings, service: Service | None) -> None:
        content = settings.discord_message_content
        shards: dict[str, int] = {}
        if settings.discord_shard_count:  # scale-out: each replica runs one shard
            shards = {"shard_id": settings.discord_shard_id,
                      "shard_count": settings.discord_shard_count}
        super().__init__(command_prefix=commands.when_mentioned, intents=intents(content),
                         max_ratelimit_timeout=RATELIMIT_WAIT_S,
                         help_command=None, **shards)
        self.service = service
        self.admin_ids = parse_ids(settings.discord_admin_ids)
        self.outbox = DiscordOutbox(self)
        self.handler = MessageHandler(service, self.outbox, content) if service else None

    async def setup_hook(self) -> None:
        await self.add_cog(MemoryCog(self.service, self.admin_ids))
        await self.add_cog(KnowledgeCog(self.service, self.admin_ids))

    async def on_message(self, message: discord.Message) -> None:
        """Replaces prefix-command processing: the bot only has slash commands."""
        if self.handler is not None and self.user is not None:
            await self.handler.handle(message, self.user.id)

    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        """A message deleted on Discord leaves the author's recall memory too."""
        await forget_deleted(self.service, f"discord:{payload.message_id}")

    async def on_ready(self) -> None:
        log.info("discord connected as %s in %d server(s)", self.user, len(self.guilds))
        for guild in list(self.guilds):
            await self.on_guild_join(guild)

    async def on_guild_join(self, guild: discord.Guild) -> None:
        """ALLOWED_GUILDS: the bot leaves any other server (docs/privacy.md)."""
        if self.service is not None and not self.service.admission.server_allowed(
                "discord", str(guild.id)):
            log.warning("leaving server %s: not in ALLOWED_GUILDS", guild.id)
            with contextlib.suppress(discord.HTTPException):
                await guild.leave()

    async def ready_check(self) -> bool:
        return self.is_ready() and not self.is_closed()


def _token(settings: Settings) -> str:
    if settings.discord_token is None:
        raise ConfigError("DISCORD_TOKEN is not set")
    return settings.discord_token.get_secret_value()


async def run(service: Service, stop: asyncio.Event, drain_s: float = 10.0) -> None:
    """Serve Discord until ``stop`` is set; returns once the client is closed."""
    bot = MembotBot(service.settings, service)
    service.router.register("discord", bot.outbox)
    service.add_check("discord", bot.ready_check)
    client = asyncio.create_task(bot.start(_token(service.settings)), name="discord-client")
    stopper = asyncio.create_task(stop.wait(), name="discord-stop")
    try:
        await asyncio.wait({client, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if client.done() and client.exception() is not None:
            log.error("discord client stopped", exc_info=client.exception())
        else:
            await _drain(service, drain_s)
    finally:
        stopper.cancel()
        await bot.close()
        await bot.outbox.close()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.wait_for(client, 10)
        log.info("discord adapter stopped")
    if client.done() and not client.cancelled() and client.exception() is not None:
        raise client.exception()  # type: ignore[misc]


async def forget_deleted(service: Service | None, event_id: str) -> None:
    if service is None:
        return
    try:
        await service.admin.forget_message(event_id)
    except MembotError:
        log.exception("could not forget a deleted message")


async def _drain(service: Service, grace_s: float) -> None:
    """Give steps already running a moment to deliver their replies before closing."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace_s
    while service.inbox.busy and loop.time() < deadline:  # noqa: ASYNC110 (a counter, no event)
        await asyncio.sleep(0.1)


async def sync_commands(settings: Settings, guild_id: str | int | None) -> int:
    """Log in, register the slash commands (in one server when ``guild_id``), log out.

    Returns 0 (a process exit status) and prints what was synced."""
    token = _token(settings)
    try:
        guild = discord.Object(id=int(guild_id)) if guild_id else None
    except ValueError:
        raise ConfigError(f"--guild must be a numeric server id, got {guild_id!r}") from None
    bot = MembotBot(settings, service=None)
    try:
        async with bot:
            await bot.login(token)
            if guild is not None:
                bot.tree.copy_global_to(guild=guild)
            synced = await bot.tree.sync(guild=guild)
    except discord.LoginFailure:
        raise ConfigError("Discord rejected DISCORD_TOKEN") from None
    where = f"in server {guild.id}" if guild else "globally"
    print(f"synced {len(synced)} slash commands {where}: {', '.join(c.name for c in synced)}")
    return 0
