"""Slash commands through discord.py's real CommandTree: INTERACTION_CREATE over the
emulated gateway, real Member permission objects from guild roles, deferred ephemeral
answers, follow-ups and confirmation buttons — Discord's response rules checked."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from adapters.discord_commands import MemoryCog
from bot.protocols import MemoryItem
from bot.testing.discord_emulator import UserOption
from tests.adapters.conftest import DiscordEnv

EPHEMERAL = 1 << 6


def texts(inter: Any) -> list[str]:
    return [m["content"] for m in inter.followups]


async def answered(env: DiscordEnv, inter: Any, n: int = 1) -> list[str]:
    await env.emu.wait(lambda: len(inter.followups) >= n)
    assert inter.responded["type"] == 5 and inter.responded["data"]["flags"] & EPHEMERAL
    assert inter.responded_at - inter.created < 3.0  # deferred inside Discord's window
    assert all(m["flags"] & EPHEMERAL for m in inter.followups)
    return texts(inter)


async def test_commands_are_synced(discord_env: DiscordEnv) -> None:
    """`membot sync-commands` bulk-overwrites /memory (6 subcommands), /heartbeat, /bot and
    /knowledge, and Discord accepted every name, description and option."""
    cmds = {c["name"]: c for c in discord_env.emu.commands["global"]}
    assert set(cmds) == {"memory", "heartbeat", "bot", "knowledge"}
    assert {o["name"] for o in cmds["memory"]["options"]} == {
        "show", "search", "export", "forget", "reset", "link"}
    assert cmds["bot"]["default_member_permissions"] == str(1 << 5)


async def test_show_own_memory_is_deferred_and_ephemeral(discord_env: DiscordEnv) -> None:
    """/memory show: deferred (thinking, ephemeral) within 3 s, answered by an ephemeral follow-up."""
    alice = discord_env.emu.add_user("alice")
    inter = await discord_env.emu.slash(alice, "memory show", guild=discord_env.emu.guild)
    assert f"Memory of discord:-:{alice.id}" in (await answered(discord_env, inter))[0]


async def test_permissions_come_from_roles(discord_env: DiscordEnv) -> None:
    """A plain member is refused another's memory; Manage Server and Administrator roles
    are allowed on members of the server; nobody reaches a non-member that way."""
    emu = discord_env.emu
    bob = emu.add_user("bob")
    cases = [((), False), (("Mods",), True), (("Admin",), True)]
    for roles, allowed in cases:
        caller = emu.add_user(f"caller{len(roles)}{roles}", roles=roles)
        inter = await emu.slash(caller, "memory show", guild=emu.guild, user=UserOption(bob))
        text = (await answered(discord_env, inter))[0]
        assert (f"Memory of discord:-:{bob.id}" in text) is allowed, (roles, text)
        if not allowed:
            assert "Only server admins" in text and str(bob.id) not in text
    stranger = emu.add_user("stranger", member=False)
    admin = emu.add_user("admin", roles=("Admin",))
    inter = await emu.slash(admin, "memory show", guild=emu.guild, user=UserOption(stranger))
    assert "members of this server" in (await answered(discord_env, inter))[0]


async def test_bot_admin_from_a_dm(discord_env: DiscordEnv) -> None:
    """An id in DISCORD_ADMIN_IDS may act on anyone's memory from a DM; /bot status too."""
    emu = discord_env.emu
    bob = emu.add_user("bob")
    op = discord_env.operator  # type: ignore[attr-defined]
    inter = await emu.slash(op, "memory show", user=UserOption(bob))
    assert f"Memory of discord:-:{bob.id}" in (await answered(discord_env, inter))[0]
    inter = await emu.slash(op, "bot status")
    assert "Known users" in (await answered(discord_env, inter))[0]
    member = emu.add_user("member")
    for command in ("bot status", "heartbeat"):
        inter = await emu.slash(member, command, guild=emu.guild)
        assert "Only server admins" in (await answered(discord_env, inter))[0]


async def test_export_is_an_ephemeral_file(discord_env: DiscordEnv) -> None:
    """/memory export uploads the caller's memory as a JSON attachment only they see."""
    alice = discord_env.emu.add_user("alice")
    inter = await discord_env.emu.slash(alice, "memory export")
    await answered(discord_env, inter)
    sent = inter.followups[0]
    assert sent["attachments"][0]["filename"] == f"memory-{alice.id}.json"
    assert json.loads(sent["_files"][0])["user"] == f"discord:-:{alice.id}"


async def _note(env: DiscordEnv, user: str, text: str) -> None:
    item = MemoryItem(id=uuid.uuid4().hex, user=user, text=text, ts=time.time(), kind="passage")
    await env.svc.memory.write("archival", [item])


async def test_forget_with_confirmation_button(discord_env: DiscordEnv) -> None:
    """/memory forget previews with buttons; someone else's click does nothing, the owner's
    click deletes and edits the message."""
    emu = discord_env.emu
    alice, eve = emu.add_user("alice"), emu.add_user("eve")
    await _note(discord_env, f"discord:-:{alice.id}", "Alice's cat is called Miso")
    inter = await emu.slash(alice, "memory forget", guild=emu.guild, query="cat Miso")
    assert "Miso" in (await answered(discord_env, inter))[0]
    question = inter.followups[0]
    other = await emu.click(eve, question, "Forget 1 note(s)")
    await emu.wait(lambda: other.responded is not None)  # told, not left with "interaction failed"
    assert other.responded["type"] == 4 and other.responded["data"]["flags"] & EPHEMERAL
    assert (await discord_env.svc.admin.show(f"discord:-:{alice.id}"))["archival_notes"] == 1
    click = await emu.click(alice, question, "Forget 1 note(s)")
    await emu.wait(lambda: question["content"] == "Forgot 1 note(s).")
    assert click.responded["type"] == 6 and question["components"] == []
    assert (await discord_env.svc.admin.show(f"discord:-:{alice.id}"))["archival_notes"] == 0


async def test_reset_cancel_changes_nothing(discord_env: DiscordEnv) -> None:
    """/memory reset asks; Cancel edits the question in place (UPDATE_MESSAGE) and keeps memory."""
    emu = discord_env.emu
    alice = emu.add_user("alice")
    await _note(discord_env, f"discord:-:{alice.id}", "a note to keep")
    inter = await emu.slash(alice, "memory reset")
    await answered(discord_env, inter)
    click = await emu.click(alice, inter.followups[0], "Cancel")
    await emu.wait(lambda: click.responded is not None)
    assert click.responded["type"] == 7 and "nothing changed" in inter.followups[0]["content"]
    assert (await discord_env.svc.admin.show(f"discord:-:{alice.id}"))["archival_notes"] == 1


async def test_slow_discord_on_the_callback(discord_env: DiscordEnv) -> None:
    """Discord answering the defer slowly (2 s) still ends in one ephemeral answer."""
    emu = discord_env.emu
    alice = emu.add_user("alice")
    emu.fail("POST", r"/interactions/\d+/[^/]+/callback$", 200, delay_s=2.0)
    inter = await emu.slash(alice, "memory show")
    assert len(await answered(discord_env, inter)) == 1
    assert [r for r in emu.rest.refused if "/interactions/" in r[1]] == []


async def test_link_is_for_bot_admins_only(discord_env: DiscordEnv) -> None:
    """/memory link needs DISCORD_ADMIN_IDS (a server Administrator is refused)."""
    emu = discord_env.emu
    admin, bob = emu.add_user("admin", roles=("Admin",)), emu.add_user("bob")
    inter = await emu.slash(admin, "memory link", guild=emu.guild, user=UserOption(bob),
                            identity="slack:T1:U9")
    assert "Only bot admins" in (await answered(discord_env, inter))[0]
    op = discord_env.operator  # type: ignore[attr-defined]
    inter = await emu.slash(op, "memory link", user=UserOption(bob), identity="slack:T1:U9")
    await answered(discord_env, inter)
    assert await discord_env.svc.admin.resolve("slack:T1:U9") == f"discord:-:{bob.id}"


async def test_bad_input_is_explained(discord_env: DiscordEnv) -> None:
    """An empty search is answered with the reason, ephemerally; nothing raises."""
    alice = discord_env.emu.add_user("alice")
    inter = await discord_env.emu.slash(alice, "memory search", query="   ")
    assert await answered(discord_env, inter) == ["Sorry: query is empty"]


def test_commands_are_registered_with_descriptions() -> None:
    """/memory's 6 subcommands, /heartbeat and /bot status exist, described in <= 100 chars."""
    cog: Any = MemoryCog(None, frozenset())
    names = {c.qualified_name: c.description for c in cog.walk_app_commands()}
    assert {"memory show", "memory search", "memory export", "memory forget", "memory reset",
            "memory link", "heartbeat", "bot status"} <= set(names)
    assert all(10 < len(d) <= 100 for d in names.values())  # Discord's limit is 100
    params = [p.description for c in cog.walk_app_commands() for p in getattr(c, "parameters", [])]
    assert params and all(0 < len(d) <= 100 for d in params)
