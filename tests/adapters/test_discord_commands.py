"""Discord slash commands: callbacks invoked with fake interactions over the real core.
Answers are ephemeral; acting on someone else's memory is checked when the command runs."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from adapters.discord_commands import MemoryCog
from adapters.discord_views import ConfirmView
from bot.protocols import MemoryItem
from tests.adapters.discord_fakes import FakeGuild, FakeInteraction, FakeUser, Perms
from tests.conftest import Harness

GUILD = FakeGuild(id=500)
OPERATOR = 77


@pytest.fixture
def cog(harness: Harness) -> MemoryCog:
    return MemoryCog(harness.svc, frozenset({str(OPERATOR)}))


def member(uid: int, **perms: bool) -> FakeUser:
    return FakeUser(id=uid, display_name=f"user{uid}", guild=GUILD, guild_permissions=Perms(**perms))


def in_guild(user: FakeUser) -> FakeInteraction:
    return FakeInteraction(user=user, guild=GUILD)


async def test_show_own_memory_is_ephemeral(cog: MemoryCog) -> None:
    """/memory show answers the caller only (deferred and followed up ephemerally)."""
    inter = FakeInteraction(user=FakeUser(id=1))
    await cog.show.callback(cog, inter)  # type: ignore[arg-type]
    assert inter.all_ephemeral() and inter.response.deferred == {"ephemeral": True, "thinking": True}
    assert "Memory of discord:-:1" in inter.texts()[0]


async def test_admin_variant_refused_for_non_admin(cog: MemoryCog) -> None:
    """A member asking for another's memory is refused, ephemerally, without naming them."""
    inter = in_guild(member(1))
    await cog.show.callback(cog, inter, user=member(2))  # type: ignore[arg-type]
    assert inter.all_ephemeral() and len(inter.texts()) == 1
    assert "Only the person themselves" in inter.texts()[0] and "discord:-:2" not in inter.texts()[0]


async def test_server_admin_cannot_see_a_members_memory(cog: MemoryCog) -> None:
    """Manage Server, Administrator or ownership of a server gives no access to a member's
    memory (it holds their DMs and other servers): What was seen 1."""
    for perms in ({"manage_guild": True}, {"administrator": True}):
        inter = in_guild(member(1, **perms))
        await cog.show.callback(cog, inter, user=member(2))  # type: ignore[arg-type]
        assert "Only the person themselves" in inter.texts()[0]
        assert "Memory of" not in inter.texts()[0]


async def test_bot_admin_may_act_anywhere(cog: MemoryCog) -> None:
    """An id in DISCORD_ADMIN_IDS may act on anyone's memory, even from a DM."""
    inter = FakeInteraction(user=FakeUser(id=OPERATOR))
    await cog.show.callback(cog, inter, user=FakeUser(id=3))  # type: ignore[arg-type]
    assert "Memory of discord:-:3" in inter.texts()[0]


async def test_admin_only_commands_check_at_run_time(cog: MemoryCog) -> None:
    """/heartbeat on someone else and /bot status refuse non-admins although Discord may show them."""
    for command, args in ((cog.heartbeat, {"user": member(2)}), (cog.status, {})):
        inter = in_guild(member(1))
        await command.callback(cog, inter, **args)  # type: ignore[arg-type]
        assert inter.all_ephemeral() and "Only" in inter.texts()[0]
    inter = in_guild(member(1, administrator=True))
    await cog.status.callback(cog, inter)  # type: ignore[arg-type]
    assert "Known users" in inter.texts()[0] and "redis ok" in inter.texts()[0]


async def test_export_is_an_ephemeral_json_file(cog: MemoryCog) -> None:
    """/memory export sends the caller's memory as a JSON attachment only they see."""
    inter = FakeInteraction(user=FakeUser(id=1))
    await cog.export.callback(cog, inter)  # type: ignore[arg-type]
    sent = inter.followup.sent[0]
    assert sent.kw["ephemeral"] is True and sent.kw["file"].filename == "memory-1.json"
    assert json.loads(sent.kw["file"].fp.read())["user"] == "discord:-:1"


async def _note(harness: Harness, user: str, text: str) -> None:
    item = MemoryItem(id=uuid.uuid4().hex, user=user, text=text, ts=time.time(), kind="passage")
    await harness.svc.memory.write("archival", [item])


def _view(inter: FakeInteraction) -> ConfirmView:
    view = inter.followup.sent[-1].kw["view"]
    assert isinstance(view, ConfirmView)
    return view


async def test_forget_previews_then_deletes_on_confirm(cog: MemoryCog, harness: Harness) -> None:
    """/memory forget lists what matches and deletes it only after the owner confirms."""
    await _note(harness, "discord:-:1", "Alice's cat is called Miso")
    inter = FakeInteraction(user=FakeUser(id=1))
    await cog.forget.callback(cog, inter, query="cat Miso")  # type: ignore[arg-type]
    assert "Miso" in inter.texts()[0] and inter.all_ephemeral()
    view = _view(inter)
    assert await view.interaction_check(FakeInteraction(user=FakeUser(id=2))) is False  # type: ignore[arg-type]
    assert (await harness.svc.admin.show("discord:-:1"))["archival_notes"] == 1
    click = FakeInteraction(user=FakeUser(id=1))
    await view.confirm(click)  # type: ignore[arg-type]
    [edit] = click.original_edits
    assert edit["view"] is None and "1 archival notes" in edit["content"]
    assert (await harness.svc.admin.show("discord:-:1"))["archival_notes"] == 0


async def test_reset_asks_and_cancel_changes_nothing(cog: MemoryCog, harness: Harness) -> None:
    """/memory reset shows a confirmation; Cancel keeps the memory, Confirm deletes it."""
    await _note(harness, "discord:-:1", "a note to lose")
    inter = FakeInteraction(user=FakeUser(id=1))
    await cog.reset.callback(cog, inter)  # type: ignore[arg-type]
    view = _view(inter)
    cancel = FakeInteraction(user=FakeUser(id=1))
    await view.cancel(cancel)  # type: ignore[arg-type]
    assert "nothing changed" in cancel.response.edits[0]["content"]
    assert (await harness.svc.admin.show("discord:-:1"))["archival_notes"] == 1
    inter = FakeInteraction(user=FakeUser(id=1))
    await cog.reset.callback(cog, inter)  # type: ignore[arg-type]
    click = FakeInteraction(user=FakeUser(id=1))
    await _view(inter).confirm(click)  # type: ignore[arg-type]
    assert "deleted" in click.original_edits[0]["content"]
    assert (await harness.svc.admin.show("discord:-:1"))["archival_notes"] == 0


async def test_errors_are_reported_to_the_caller(cog: MemoryCog) -> None:
    """Invalid input (an empty search) is explained ephemerally; nothing raises."""
    inter = FakeInteraction(user=FakeUser(id=1))
    await cog.search.callback(cog, inter, query="   ")  # type: ignore[arg-type]
    assert inter.texts() == ["Sorry: query is empty"] and inter.all_ephemeral()


def test_commands_are_registered_with_descriptions() -> None:
    """/memory's subcommands, /heartbeat and /bot status exist, described in <= 100 chars."""
    cog: Any = MemoryCog(None, frozenset())
    names = {c.qualified_name: c.description for c in cog.walk_app_commands()}
    assert {"memory show", "memory search", "memory export", "memory forget", "memory reset",
            "memory audit", "memory link", "memory unlink", "memory pause", "memory resume",
            "heartbeat", "bot status"} <= set(names)
    assert all(10 < len(d) <= 100 for d in names.values())  # Discord's limit is 100
    params = [p.description for c in cog.walk_app_commands() for p in getattr(c, "parameters", [])]
    assert params and all(0 < len(d) <= 100 for d in params)
