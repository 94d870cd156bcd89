"""Slash commands: ``/memory show|search|export|forget|reset|link``, ``/heartbeat`` and
``/bot status``. Every answer is ephemeral; every action goes through ``bot.ops.admin``
(audited there). Acting on someone else's memory is checked at run time."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands
from discord.ext import commands

from adapters import render
from adapters.discord_inbound import user_key
from adapters.discord_views import (
    Action,
    ConfirmView,
    Refused,
    require_admin,
    run_command,
    send_file,
    send_text,
    target_identity,
)

if TYPE_CHECKING:
    from bot.ops.admin import Admin
    from bot.service import Service

HIDDEN = discord.Permissions(manage_guild=True)  # a display hint; checks run at call time
ADMIN_USER = "Admins only: act on this person's memory instead of yours"


def actor(interaction: discord.Interaction) -> str:
    return f"discord:{interaction.user.id}"


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

    async def target(self, interaction: discord.Interaction, user: discord.User | None) -> str:
        """The memory key to act on (identity links applied); raises Refused."""
        return await self.admin.resolve(target_identity(interaction, user, self.admin_ids))

    @memory.command(name="show", description="Show what the bot remembers about you: core memory, summary, counts.")
    @app_commands.describe(user=ADMIN_USER)
    async def show(self, interaction: discord.Interaction, user: discord.User | None = None) -> None:
        async def work() -> None:
            key = await self.target(interaction, user)
            self.admin.audit(actor(interaction), "show", key)  # Admin.show does not audit reads
            await send_text(interaction, render.show(await self.admin.show(key)))
        await run_command(interaction, work)

    @memory.command(name="search", description="Search your past conversations (recall) or saved notes (archival).")
    @app_commands.describe(query="What to look for", kind="recall = past messages, archival = saved notes", user=ADMIN_USER)
    async def search(self, interaction: discord.Interaction, query: str,
                     kind: Literal["recall", "archival"] = "recall",
                     user: discord.User | None = None) -> None:
        async def work() -> None:
            key = await self.target(interaction, user)
            self.admin.audit(actor(interaction), "search", key, kind=kind)
            found = await self.admin.search(key, kind, query, limit=5)
            await send_text(interaction, render.hits(found, query))
        await run_command(interaction, work)

    @memory.command(name="export", description="Download everything the bot remembers about you as a JSON file (only you see it).")
    @app_commands.describe(user=ADMIN_USER)
    async def export(self, interaction: discord.Interaction, user: discord.User | None = None) -> None:
        async def work() -> None:
            key = await self.target(interaction, user)
            data = await self.admin.export(key, actor=actor(interaction))
            raw = json.dumps(data, indent=2, ensure_ascii=False).encode("utf-8")
            name = f"memory-{key.rsplit(':', 1)[-1]}.json"
            await send_file(interaction, "Everything I remember, as JSON.", raw, name)
        await run_command(interaction, work)

    @memory.command(name="forget", description="Find saved notes matching a query and delete them (asks first).")
    @app_commands.describe(query="What the notes to forget are about", user=ADMIN_USER)
    async def forget(self, interaction: discord.Interaction, query: str,
                     user: discord.User | None = None) -> None:
        async def work() -> None:
            key = await self.target(interaction, user)
            found = await self.admin.forget_preview(key, query, limit=10)
            text = render.forget_preview(found, query)
            if not found:
                await send_text(interaction, text)
                return
            ids, who = [h["id"] for h in found], actor(interaction)

            async def forget() -> str:
                n = await self.admin.forget(key, ids, actor=who)
                return f"Forgot {n} note(s)."
            await self.confirm(interaction, text[:1_900], f"Forget {len(ids)} note(s)", forget)
        await run_command(interaction, work)

    @memory.command(name="reset", description="Delete ALL memory the bot has of you; it starts fresh (asks first).")
    @app_commands.describe(user=ADMIN_USER)
    async def reset(self, interaction: discord.Interaction, user: discord.User | None = None) -> None:
        async def work() -> None:
            key = await self.target(interaction, user)
            who = actor(interaction)

            async def reset() -> str:
                await self.admin.reset(key, actor=who)
                return f"All memory of {key} is deleted."
            await self.confirm(interaction, f"Delete **all** memory of {key}? This cannot be undone.",
                               "Delete everything", reset)
        await run_command(interaction, work)

    @memory.command(name="link", description="Bot admins: let another platform identity (e.g. slack:T123:U456) share a user's memory.")
    @app_commands.describe(user="Whose memory to share", identity="Identity key such as slack:TEAM:USER")
    async def link(self, interaction: discord.Interaction, user: discord.User, identity: str) -> None:
        async def work() -> None:
            if str(interaction.user.id) not in self.admin_ids:
                raise Refused("Only bot admins (DISCORD_ADMIN_IDS) can link identities.")
            target = await self.admin.resolve(user_key(user))
            await self.admin.link(identity.strip(), target, actor=actor(interaction))
            await send_text(interaction, f"{identity.strip()} now shares the memory of {target}.")
        await run_command(interaction, work)

    @app_commands.default_permissions(manage_guild=True)
    @app_commands.command(name="heartbeat", description="Admins: wake an agent now to reflect and tidy its memory.")
    @app_commands.describe(user="Whose agent (default: yours)")
    async def heartbeat(self, interaction: discord.Interaction, user: discord.User | None = None) -> None:
        async def work() -> None:
            require_admin(interaction, self.admin_ids)
            key = await self.target(interaction, user)
            status = await self.admin.heartbeat_now(key, actor=actor(interaction))
            await send_text(interaction, f"Heartbeat for {key}: {status}.")
        await run_command(interaction, work)

    @admin_group.command(name="status", description="Admins: users, queue depth, workers and health checks.")
    async def status(self, interaction: discord.Interaction) -> None:
        async def work() -> None:
            require_admin(interaction, self.admin_ids)
            await send_text(interaction, render.status(await self.admin.status()))
        await run_command(interaction, work)

    async def confirm(self, interaction: discord.Interaction, text: str, label: str,
                      action: Action) -> None:
        view = ConfirmView(interaction.user.id, label, action)
        view.message = await interaction.followup.send(text, view=view, ephemeral=True, wait=True)
