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
    """`membot sync-commands` bulk-overwrites /memory (10 subcommands), /heartbeat, /bot and
    /knowledge, and Discord accepted every name, description and option."""
    cmds = {c["name"]: c for c in discord_env.emu.commands["global"]}
    assert set(cmds) == {"memory", "heartbeat", "bot", "knowledge"}
    assert {o["name"] for o in cmds["memory"]["options"]} == {
        "show", "search", "export", "forget", "reset", "link", "unlink", "audit", "pause",
        "resume"}
    assert cmds["bot"]["default_member_permissions"] == str(1 << 5)


async def test_show_own_memory_is_deferred_and_ephemeral(discord_env: DiscordEnv) -> None:
    """/memory show: deferred (thinking, ephemeral) within 3 s, answered by an ephemeral follow-up."""
    alice = discord_env.emu.add_user("alice")
    inter = await discord_env.emu.slash(alice, "memory show", guild=discord_env.emu.guild)
    assert f"Memory of discord:-:{alice.id}" in (await answered(discord_env, inter))[0]


async def test_permissions_come_from_roles(discord_env: DiscordEnv) -> None:
    """Permissions built by discord.py from real roles: a plain member, Manage Server and
    Administrator are all refused another member's memory (it holds their DMs and other
    servers: docs/privacy.md), and the refusal names nobody."""
    emu = discord_env.emu
    bob = emu.add_user("bob")
    stranger = emu.add_user("stranger", member=False)
    for roles in ((), ("Mods",), ("Admin",)):
        caller = emu.add_user(f"caller{len(roles)}{roles}", roles=roles)
        for target in (bob, stranger):
            inter = await emu.slash(caller, "memory show", guild=emu.guild, user=UserOption(target))
            text = (await answered(discord_env, inter))[0]
            assert "Only the person themselves" in text, (roles, text)
            assert "Memory of" not in text and str(target.id) not in text


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
    inter = await emu.slash(member, "bot status", guild=emu.guild)
    assert "Only this server's admins" in (await answered(discord_env, inter))[0]
    inter = await emu.slash(member, "heartbeat", guild=emu.guild, user=UserOption(bob))
    assert "Only the person themselves" in (await answered(discord_env, inter))[0]


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
    other = await emu.click(eve, question, "Forget it")
    await emu.wait(lambda: other.responded is not None)  # told, not left with "interaction failed"
    assert other.responded["type"] == 4 and other.responded["data"]["flags"] & EPHEMERAL
    assert (await discord_env.svc.admin.show(f"discord:-:{alice.id}"))["archival_notes"] == 1
    click = await emu.click(alice, question, "Forget it")
    await emu.wait(lambda: question["content"].startswith("Forgotten."))
    assert "1 archival notes" in question["content"]
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


async def test_link_with_a_one_time_code(discord_env: DiscordEnv) -> None:
    """/memory link gives the asker an ephemeral one-time code; confirming it from the other
    account makes that account share the asker's memory (a server Administrator cannot link
    anyone else: the command takes no target)."""
    emu = discord_env.emu
    alice, alt = emu.add_user("alice", roles=("Admin",)), emu.add_user("alice-alt")
    inter = await emu.slash(alice, "memory link", guild=emu.guild)
    text = (await answered(discord_env, inter))[0]
    assert inter.followups[0]["flags"] & EPHEMERAL
    code = text.split("code: ")[1].split(" ")[0]
    inter = await emu.slash(alt, "memory link", code=code)
    await answered(discord_env, inter)
    assert await discord_env.svc.admin.resolve(f"discord:-:{alt.id}") == f"discord:-:{alice.id}"


async def test_bad_input_is_explained(discord_env: DiscordEnv) -> None:
    """An empty search is answered with the reason, ephemerally; nothing raises."""
    alice = discord_env.emu.add_user("alice")
    inter = await discord_env.emu.slash(alice, "memory search", query="   ")
    assert await answered(discord_env, inter) == ["Sorry: query is empty"]


def test_commands_are_registered_with_descriptions() -> None:
    """/memory's subcommands, /heartbeat and /bot status exist, described in <= 100 chars."""
    cog: Any = MemoryCog(None, frozenset())
    names = {c.qualified_name: c.description for c in cog.walk_app_commands()}
    assert {"memory show", "memory search", "memory export", "memory forget", "memory reset",
            "memory link", "heartbeat", "bot status"} <= set(names)
    assert all(10 < len(d) <= 100 for d in names.values())  # Discord's limit is 100
    params = [p.description for c in cog.walk_app_commands() for p in getattr(c, "parameters", [])]
    assert params and all(0 < len(d) <= 100 for d in params)
