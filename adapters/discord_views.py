"""Discord interaction helpers: ephemeral answers (split or as a file), confirmation
buttons, and who the caller is (an ``Actor`` for ``bot.ops.access``)."""

from __future__ import annotations

import gzip
import io
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import discord

from adapters.chunking import split_message
from adapters.discord_inbound import user_key
from bot.errors import AccessDenied, AdminError, MembotError
from bot.ops.access import Actor

log = logging.getLogger("membot.discord")

LIMIT = 2_000
MAX_FILE_BYTES = 8 * 1024 * 1024
Action = Callable[[], Awaitable[str]]
Refused = AccessDenied  # the caller may not do this; shown to them, nothing changed


# --- who is asking (the rule itself is in bot.ops.access) -------------------------------
def is_operator(user: Any, admin_ids: frozenset[str]) -> bool:
    """A bot admin (DISCORD_ADMIN_IDS): an operator of this deployment."""
    return str(user.id) in admin_ids


def is_guild_admin(interaction: Any) -> bool:
    """Administrator or Manage Server in the server where the command runs (not in DMs)."""
    perms = getattr(interaction.user, "guild_permissions", None)
    return (interaction.guild is not None and perms is not None
            and bool(perms.administrator or perms.manage_guild))


def server_of(interaction: Any) -> str:
    """``discord:GUILD`` of the server the command runs in ("" in DMs)."""
    return f"discord:{interaction.guild.id}" if interaction.guild is not None else ""


def actor_of(interaction: Any, admin_ids: frozenset[str]) -> Actor:
    """The caller, read from the interaction on every call (default_permissions only hides)."""
    return Actor(user_key(interaction.user), operator=is_operator(interaction.user, admin_ids),
                 admin_of=server_of(interaction) if is_guild_admin(interaction) else "")


NOT_SERVER_ADMIN = ("Only server admins (Manage Server) and bot operators can do that here; it "
                    "changes the server, not anyone's memory.")


def require_admin(interaction: Any, admin_ids: frozenset[str]) -> None:
    """Deployment-level commands of this server (knowledge, channels): its admins or an
    operator. Never a way into someone's memory (that is bot.ops.access)."""
    if not actor_of(interaction, admin_ids).may_administer(server_of(interaction)):
        raise Refused(NOT_SERVER_ADMIN)


def identity_of(user: Any) -> str | None:
    """The identity key of a user option (None: the caller's own memory)."""
    return None if user is None else user_key(user)


# --- ephemeral answers ----------------------------------------------------------------------
async def send_text(interaction: Any, text: str, max_chunks: int = 4) -> None:
    """Answer only the caller: split at 2,000 chars, as a Markdown file when very long."""
    chunks = split_message(text, LIMIT) or ["(nothing)"]
    if len(chunks) > max_chunks:
        await send_file(interaction, "The answer is long, so here it is as a file.",
                        text.encode("utf-8"), "answer.md")
        return
    for chunk in chunks:
        await interaction.followup.send(chunk, ephemeral=True)


async def send_file(interaction: Any, note: str, data: bytes, filename: str) -> None:
    if len(data) > MAX_FILE_BYTES:
        data, filename = gzip.compress(data), filename + ".gz"
    if len(data) > MAX_FILE_BYTES:
        raise AdminError("too large to send here; ask the operator to run `membot memory export`")
    await interaction.followup.send(note, file=discord.File(io.BytesIO(data), filename=filename),
                                    ephemeral=True)


async def run_command(interaction: Any, work: Callable[[], Awaitable[None]]) -> None:
    """Defer ephemerally (memory work may wait for a running step), run, report errors."""
    await interaction.response.defer(ephemeral=True, thinking=True)
    try:
        await work()
    except MembotError as exc:
        await interaction.followup.send(f"Sorry: {exc}", ephemeral=True)
    except Exception:
        log.exception("slash command failed")
        await interaction.followup.send("Something went wrong; nothing was changed.",
                                        ephemeral=True)


# --- confirmation -----------------------------------------------------------------------------
class ConfirmView(discord.ui.View):
    """A danger button that runs ``action`` once, for the person who asked only."""

    def __init__(self, owner_id: int, label: str, action: Action,
                 timeout_s: float = 120.0) -> None:
        super().__init__(timeout=timeout_s)
        self.owner_id = owner_id
        self.action = action
        self.outcome = ""
        self.message: Any = None
        self.confirm_button: discord.ui.Button[ConfirmView] = discord.ui.Button(
            label=label, style=discord.ButtonStyle.danger)
        self.cancel_button: discord.ui.Button[ConfirmView] = discord.ui.Button(
            label="Cancel", style=discord.ButtonStyle.secondary)
        self.confirm_button.callback = self.confirm  # type: ignore[method-assign]
        self.cancel_button.callback = self.cancel  # type: ignore[method-assign]
        self.add_item(self.confirm_button)
        self.add_item(self.cancel_button)

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        """Only the person who asked; anyone else is told so (an unanswered click shows
        them "This interaction failed")."""
        if interaction.user.id == self.owner_id:
            return True
        await interaction.response.send_message("Only the person who asked can answer this.",
                                                ephemeral=True)
        return False

    async def confirm(self, interaction: discord.Interaction) -> None:
        if self.outcome:
            return
        self.outcome = "confirmed"
        self.stop()
        await interaction.response.defer()
        try:
            text = await self.action()
        except MembotError as exc:
            text = f"Nothing changed: {exc}"
        await interaction.edit_original_response(content=text, view=None)

    async def cancel(self, interaction: discord.Interaction) -> None:
        self.outcome = self.outcome or "cancelled"
        self.stop()
        await interaction.response.edit_message(content="Cancelled; nothing changed.", view=None)

    async def on_timeout(self) -> None:
        if self.message is not None and not self.outcome:
            try:
                await self.message.edit(content="No answer; nothing changed.", view=None)
            except discord.HTTPException:
                log.debug("could not edit a timed-out confirmation")
