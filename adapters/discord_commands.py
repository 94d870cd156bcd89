"""Slash commands: ``/memory show|search|export|forget|reset|audit|link``, ``/heartbeat``
and ``/bot status``. Every answer is ephemeral; every memory action goes through
``bot.ops.access`` (who may act on whose memory, durable audit, notices), checked when
the command runs."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands
from discord.ext import commands

from adapters import render
from adapters.discord_views import (
    Action,
    ConfirmView,
    Refused,
    actor_of,
    identity_of,
    run_command,
    send_file,
    send_text,
    server_of,
)

if TYPE_CHECKING:
    from bot.ops.access import Access, Actor
    from bot.ops.admin import Admin
    from bot.service import Service

HIDDEN = discord.Permissions(manage_guild=True)  # a display hint; checks run at call time
ADMIN_USER = "Bot operators only: act on this person's memory instead of yours"


class MemoryCog(commands.Cog):
    memory = app_commands.Group(
        name="memory", description="What the bot remembers about you: show, search, export, forget, reset")
    admin_group = app_commands.Group(name="bot", description="Bot administration (admins only)",
                                     default_permissions=HIDDEN)

    def __init__(self, service: Service | None, admin_ids: frozenset[str]) -> None:
        self.service = service  # None while only syncing the command tree
        self.admin_ids = admin_ids

    @property
    def admin(self) -> Admin:
        if self.service is None:
            raise RuntimeError("commands registered without a service")
        return self.service.admin

    @property
    def access(self) -> Access:
        if self.service is None:
            raise RuntimeError("commands registered without a service")
        return self.service.access

    def who(self, interaction: discord.Interaction) -> Actor:
        return actor_of(interaction, self.admin_ids)

    @memory.command(name="show", description="Show what the bot remembers about you: core memory, summary, counts.")
    @app_commands.describe(user=ADMIN_USER)
    async def show(self, interaction: discord.Interaction, user: discord.User | None = None) -> None:
        async def work() -> None:
            shown = await self.access.show(self.who(interaction), identity_of(user))
            await send_text(interaction, render.show(shown))
        await run_command(interaction, work)

    @memory.command(name="search", description="Search your past conversations (recall) or saved notes (archival).")
    @app_commands.describe(query="What to look for", kind="recall = past messages, archival = saved notes", user=ADMIN_USER)
    async def search(self, interaction: discord.Interaction, query: str,
                     kind: Literal["recall", "archival"] = "recall",
                     user: discord.User | None = None) -> None:
        async def work() -> None:
            found = await self.access.search(self.who(interaction), kind, query, identity_of(user))
            await send_text(interaction, render.hits(found, query))
        await run_command(interaction, work)

    @memory.command(name="export", description="Download everything the bot remembers about you as a JSON file (only you see it).")
    @app_commands.describe(user=ADMIN_USER)
    async def export(self, interaction: discord.Interaction, user: discord.User | None = None) -> None:
        async def work() -> None:
            data = await self.access.export(self.who(interaction), identity_of(user))
            raw = json.dumps(data, indent=2, ensure_ascii=False).encode("utf-8")
            name = f"memory-{str(data['user']).rsplit(':', 1)[-1]}.json"
            await send_file(interaction, "Everything I remember, as JSON.", raw, name)
        await run_command(interaction, work)

    @memory.command(name="forget", description="Find a fact in all of your memory and delete it everywhere (asks first).")
    @app_commands.describe(query="Words of the fact to forget", user=ADMIN_USER)
    async def forget(self, interaction: discord.Interaction, query: str,
                     user: discord.User | None = None) -> None:
        async def work() -> None:
            who, target = self.who(interaction), identity_of(user)
            plan = await self.access.forget_preview(who, query, target)
            text = render.forget_preview(plan)
            if plan.empty:
                await send_text(interaction, text)
                return

            async def forget() -> str:  # checked again at the click, the plan made again
                counts = await self.access.forget(actor_of(interaction, self.admin_ids), query, target)
                return f"Forgotten. {render.receipt(counts)}"
            await self.confirm(interaction, text[:1_900], "Forget it", forget)
        await run_command(interaction, work)

    @memory.command(name="reset", description="Delete ALL memory the bot has of you; it starts fresh (asks first).")
    @app_commands.describe(user=ADMIN_USER)
    async def reset(self, interaction: discord.Interaction, user: discord.User | None = None) -> None:
        async def work() -> None:
            who, target = self.who(interaction), identity_of(user)
            key, _ = await self.access.memory_of(who, target)

            async def reset() -> str:  # checked again at the click
                done, counts = await self.access.reset(actor_of(interaction, self.admin_ids), target)
                return f"All memory of {done} is deleted. {render.receipt(counts)}"
            await self.confirm(interaction, f"Delete **all** memory of {key}? This cannot be undone.",
                               "Delete everything", reset)
        await run_command(interaction, work)

    @memory.command(name="pause", description="Stop remembering: I answer, but keep nothing of what you say until resume.")
    async def pause(self, interaction: discord.Interaction) -> None:
        async def work() -> None:
            await self.access.pause(self.who(interaction), True)
            await send_text(interaction, render.PAUSED)
        await run_command(interaction, work)

    @memory.command(name="resume", description="Remember again (what you said while paused is dropped).")
    async def resume(self, interaction: discord.Interaction) -> None:
        async def work() -> None:
            await self.access.pause(self.who(interaction), False)
            await send_text(interaction, render.RESUMED)
        await run_command(interaction, work)

    @memory.command(name="audit", description="Who acted on your memory (views, exports, resets...), newest first.")
    @app_commands.describe(user=ADMIN_USER)
    async def audit(self, interaction: discord.Interaction, user: discord.User | None = None) -> None:
        async def work() -> None:
            entries = await self.access.audit_trail(self.who(interaction), identity_of(user))
            await send_text(interaction, render.audit(entries))
        await run_command(interaction, work)

    @memory.command(name="link", description="Share one memory with your other account: get a code here, confirm it there.")
    @app_commands.describe(code="The code your other account got from /memory link (empty: get a code)")
    async def link(self, interaction: discord.Interaction, code: str | None = None) -> None:
        async def work() -> None:
            who = self.who(interaction)
            if not code or not code.strip():
                await send_text(interaction, render.LINK_CODE.format(code=await self.access.link_offer(who)))
                return
            memory = await self.access.link_accept(who, code)
            await send_text(interaction, f"Linked: {who.identity} now shares the memory of {memory}.")
        await run_command(interaction, work)

    @memory.command(name="unlink", description="Stop sharing memory between your accounts.")
    async def unlink(self, interaction: discord.Interaction) -> None:
        async def work() -> None:
            gone = await self.access.unlink(self.who(interaction))
            await send_text(interaction, f"Unlinked: {', '.join(gone)}." if gone else "Nothing is linked.")
        await run_command(interaction, work)

    @app_commands.default_permissions(manage_guild=True)
    @app_commands.command(name="heartbeat", description="Admins: wake an agent now to reflect and tidy its memory.")
    @app_commands.describe(user="Whose agent (default: yours)")
    async def heartbeat(self, interaction: discord.Interaction, user: discord.User | None = None) -> None:
        async def work() -> None:
            key, status = await self.access.heartbeat(self.who(interaction), identity_of(user))
            await send_text(interaction, f"Heartbeat for {key}: {status}.")
        await run_command(interaction, work)

    @admin_group.command(name="status", description="Admins: users, queue depth, workers and health checks.")
    async def status(self, interaction: discord.Interaction) -> None:
        async def work() -> None:
            self.access.require_server_admin(self.who(interaction), server_of(interaction))
            await send_text(interaction, render.status(await self.admin.status()))
        await run_command(interaction, work)

    @admin_group.command(name="channels", description="Server admins: let the bot answer in this channel, or not (CHANNEL_OPT_IN).")
    @app_commands.describe(action="enable or disable this channel, or list the enabled ones")
    async def channels(self, interaction: discord.Interaction,
                       action: Literal["enable", "disable", "list"] = "list") -> None:
        async def work() -> None:
            server = server_of(interaction)
            if self.service is None or interaction.guild is None:
                raise Refused("Run this in a channel of your server.")
            self.access.require_server_admin(self.who(interaction), server)
            admission, guild = self.service.admission, str(interaction.guild.id)
            if action == "list":
                ids = await admission.channels("discord", guild)
            else:
                channel = str(getattr(interaction, "channel_id", "") or "")
                ids = await admission.set_channel("discord", guild, channel, action == "enable")
            await send_text(interaction, render.channels(ids, self.service.settings.channel_opt_in))
        await run_command(interaction, work)

    async def confirm(self, interaction: discord.Interaction, text: str, label: str,
                      action: Action) -> None:
        view = ConfirmView(interaction.user.id, label, action)
        view.message = await interaction.followup.send(text, view=view, ephemeral=True, wait=True)
