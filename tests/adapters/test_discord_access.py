"""Discord: who may act on whose memory, for every memory command (docs/privacy.md).
Callbacks are invoked with fake interactions over the real core, as Discord dispatches them."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from adapters.discord_commands import MemoryCog
from adapters.discord_views import ConfirmView
from bot.protocols import MemoryItem
from bot.testing.outbox import RecordingOutbox
from tests.adapters.discord_fakes import FakeGuild, FakeInteraction, FakeUser, Perms
from tests.conftest import Harness

GUILD = FakeGuild(id=500)
OPERATOR = 77
CANARY = "canary-violet-3141"
VICTIM = "discord:-:2"


@pytest.fixture
async def cog(harness: Harness) -> MemoryCog:
    await harness.svc.memory.write("archival", [MemoryItem(
        id=uuid.uuid4().hex, user=VICTIM, text=f"secret told in a DM: {CANARY}", ts=time.time(),
        kind="passage")])
    return MemoryCog(harness.svc, frozenset({str(OPERATOR)}))


def member(uid: int, **perms: bool) -> FakeUser:
    return FakeUser(id=uid, display_name=f"user{uid}", guild=GUILD, guild_permissions=Perms(**perms))


async def invoke(cog: MemoryCog, name: str, inter: FakeInteraction, target: FakeUser) -> None:
    """Run one memory command on ``target``; confirm buttons are clicked by the caller."""
    command: Any = {"show": cog.show, "search": cog.search, "export": cog.export,
                    "forget": cog.forget, "reset": cog.reset, "heartbeat": cog.heartbeat,
                    "audit": cog.audit}[name]
    args: dict[str, Any] = {"user": target}
    if name in ("search", "forget"):
        args["query"] = "canary violet secret"
    if name == "search":
        args["kind"] = "archival"
    await command.callback(cog, inter, **args)
    for sent in list(inter.followup.sent):
        view = sent.kw.get("view")
        if isinstance(view, ConfirmView):
            click = FakeInteraction(user=inter.user, guild=inter.guild)
            await view.confirm(click)  # type: ignore[arg-type]
            inter.original_edits.extend(click.original_edits)


def everything_shown(inter: FakeInteraction) -> str:
    parts = [m.content or "" for m in inter.followup.sent]
    parts += [str(e.get("content")) for e in inter.original_edits]
    parts += [m.kw["file"].fp.getvalue().decode() for m in inter.followup.sent if "file" in m.kw]
    return "\n".join(parts)


PATHS = ["show", "search", "export", "forget", "reset", "heartbeat", "audit"]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("perms", [{"administrator": True}, {"manage_guild": True}])
async def test_server_admin_is_refused_on_every_path(cog: MemoryCog, harness: Harness,
                                                     path: str, perms: dict[str, bool]) -> None:
    """A server admin of a guild the member is in can neither see nor change their memory
    on any path (What was seen 1); the member's memory is unchanged."""
    inter = FakeInteraction(user=member(1, **perms), guild=GUILD)
    await invoke(cog, path, inter, member(2))
    shown = everything_shown(inter)
    assert "Only the person themselves" in shown and CANARY not in shown
    assert (await harness.svc.admin.show(VICTIM))["archival_notes"] == 1
    assert await harness.svc.audit_log.entries(VICTIM) == []


@pytest.mark.parametrize("path", PATHS)
async def test_operator_may_act_and_the_person_is_told(cog: MemoryCog, harness: Harness,
                                                       path: str) -> None:
    """A bot operator may act on anyone's memory; the action is audited durably and the
    person gets a DM notice."""
    dms = RecordingOutbox()
    harness.svc.router.register("discord", dms)
    inter = FakeInteraction(user=FakeUser(id=OPERATOR))
    await invoke(cog, path, inter, FakeUser(id=2))
    assert "Only the person" not in everything_shown(inter)
    notices = [r for r in dms.replies if r.user.user_id == "2"]
    assert notices and notices[0].reply_to == "" and notices[0].kind == "notice"
    assert f"discord:-:{OPERATOR}" in notices[0].text
    if path != "audit":
        trail = await harness.svc.audit_log.entries(VICTIM)
        assert [e.actor for e in trail][-1] == f"discord:-:{OPERATOR}"


async def test_member_reads_their_own_audit_trail(cog: MemoryCog) -> None:
    """/memory audit shows the person who exported their memory, and when."""
    op = FakeInteraction(user=FakeUser(id=OPERATOR))
    await cog.export.callback(cog, op, user=FakeUser(id=2))  # type: ignore[arg-type]
    own = FakeInteraction(user=FakeUser(id=2))
    await cog.audit.callback(cog, own)  # type: ignore[arg-type]
    assert own.all_ephemeral()
    assert f"export by discord:-:{OPERATOR}" in own.texts()[0]


async def test_own_export_has_own_memory_only(cog: MemoryCog) -> None:
    """A member's own /memory export carries their key, never anyone else's items."""
    inter = FakeInteraction(user=member(1), guild=GUILD)
    await cog.export.callback(cog, inter)  # type: ignore[arg-type]
    data = json.loads(inter.followup.sent[0].kw["file"].fp.read())
    assert data["user"] == "discord:-:1" and CANARY not in json.dumps(data)
