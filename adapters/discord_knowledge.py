"""Discord ``/knowledge add|list|remove|search``: a server's documents. ``add`` takes the
document as an attachment. Admins of the server (Manage Server / Administrator) and bot
admins add, list and remove, always in the server the command runs in; every member can
search. Answers are ephemeral."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from adapters import knowledge_chat
from adapters.discord_views import Refused, require_admin, run_command, send_text

if TYPE_CHECKING:
    from bot.service import Service


def place(interaction: discord.Interaction) -> str:
    """The knowledge scope of the server the command runs in; refused in DMs."""
    if interaction.guild is None:
        raise Refused(knowledge_chat.NO_PLACE)
    return f"discord:{interaction.guild.id}"


def actor(interaction: discord.Interaction) -> str:
    return f"discord:{interaction.user.id}"


class KnowledgeCog(commands.Cog):
    knowledge = app_commands.Group(
        name="knowledge", description="This server's documents the bot can search: add, list, remove, search")

    def __init__(self, service: Service | None, admin_ids: frozenset[str]) -> None:
        self.service = service  # None while only syncing the command tree
        self.admin_ids = admin_ids

    @property
    def svc(self) -> Service:
        if self.service is None:
            raise RuntimeError("commands registered without a service")
        return self.service

    def admin_place(self, interaction: discord.Interaction) -> str:
        scope = place(interaction)
        require_admin(interaction, self.admin_ids)
        return scope

    @knowledge.command(name="add", description="Admins: add or replace a document (Markdown, text, HTML, PDF) for this server.")
    @app_commands.describe(file="The document; a file with the same name is replaced (new version)")
    async def add(self, interaction: discord.Interaction, file: discord.Attachment) -> None:
        async def work() -> None:
            scope = self.admin_place(interaction)
            knowledge_chat.too_big(self.svc, file.size)
            data = await file.read()
            await send_text(interaction, await knowledge_chat.add(
                self.svc, scope, file.filename, data, actor(interaction)))
        await run_command(interaction, work)

    @knowledge.command(name="list", description="Admins: this server's documents, versions and drift.")
    async def list_documents(self, interaction: discord.Interaction) -> None:
        async def work() -> None:
            await send_text(interaction, await knowledge_chat.listing(
                self.svc, self.admin_place(interaction)))
        await run_command(interaction, work)

    @knowledge.command(name="remove", description="Admins: remove a document from this server's knowledge.")
    @app_commands.describe(name="Document name as /knowledge list shows it")
    async def remove(self, interaction: discord.Interaction, name: str) -> None:
        async def work() -> None:
            await send_text(interaction, await knowledge_chat.remove(
                self.svc, self.admin_place(interaction), name, actor(interaction)))
        await run_command(interaction, work)

    @knowledge.command(name="search", description="Search this server's documents.")
    @app_commands.describe(query="What to look for")
    async def search(self, interaction: discord.Interaction, query: str) -> None:
        async def work() -> None:
            scope = f"discord:{interaction.guild.id}" if interaction.guild is not None else ""
            await send_text(interaction, await knowledge_chat.search(self.svc, scope, query))
        await run_command(interaction, work)
