"""Discord /knowledge: admins upload (attachment), list and remove their own server's
documents; members search; everything ephemeral; nothing crosses servers."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from adapters.discord_knowledge import KnowledgeCog
from tests.adapters.discord_fakes import FakeGuild, FakeInteraction, FakeUser, Perms
from tests.conftest import Harness

G1, G2 = FakeGuild(id=501), FakeGuild(id=502)
OPERATOR = 77
RULES = b"# Rules\n\n## Voice\n\nMusic bots only in #music.\n\n## Roles\n\nAsk a moderator for roles.\n"


@dataclass
class FakeAttachment:
    filename: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)

    async def read(self) -> bytes:
        return self.data


@pytest.fixture
def cog(harness: Harness) -> KnowledgeCog:
    return KnowledgeCog(harness.svc, frozenset({str(OPERATOR)}))


def call(guild: FakeGuild | None, uid: int, admin: bool = False) -> FakeInteraction:
    perms = Perms(manage_guild=admin)
    return FakeInteraction(user=FakeUser(id=uid, guild=guild, guild_permissions=perms), guild=guild)


async def test_admin_uploads_lists_searches_and_removes(cog: KnowledgeCog, harness: Harness) -> None:
    """An admin's attachment becomes v1 of the server's document; a member finds it with
    its section; list shows it; remove deletes it."""
    inter = call(G1, 1, admin=True)
    await cog.add.callback(cog, inter, file=FakeAttachment("rules.md", RULES))  # type: ignore[arg-type]
    assert inter.all_ephemeral() and "rules.md** added: version 1" in inter.texts()[0]
    found = call(G1, 2)
    await cog.search.callback(cog, found, query="where can music bots play")  # type: ignore[arg-type]
    assert "Rules > Voice (rules.md v1)" in found.texts()[0] and "#music" in found.texts()[0]
    listing = call(G1, 1, admin=True)
    await cog.list_documents.callback(cog, listing)  # type: ignore[arg-type]
    assert "1 documents" in listing.texts()[0] and "rules.md — Rules (v1" in listing.texts()[0]
    again = call(G1, 1, admin=True)
    await cog.add.callback(cog, again, file=FakeAttachment("rules.md", RULES.replace(b"#music", b"#bots")))  # type: ignore[arg-type]
    assert "updated: version 2, 1 new or changed, 1 removed, 1 kept" in again.texts()[0]
    gone = call(G1, 1, admin=True)
    await cog.remove.callback(cog, gone, name="rules.md")  # type: ignore[arg-type]
    assert "Removed rules.md (v2" in gone.texts()[0]
    assert await harness.svc.store.count("knowledge", "discord:501") == 0


async def test_members_cannot_add_and_other_servers_never_see_it(cog: KnowledgeCog, harness: Harness) -> None:
    """A member without Manage Server is refused; an admin of G1 uploading affects G1 only,
    and G2's members find nothing of it."""
    member = call(G1, 2)
    await cog.add.callback(cog, member, file=FakeAttachment("rules.md", RULES))  # type: ignore[arg-type]
    assert "Only server admins" in member.texts()[0]
    assert await harness.svc.store.count("knowledge", "discord:501") == 0
    admin = call(G1, 1, admin=True)
    await cog.add.callback(cog, admin, file=FakeAttachment("rules.md", RULES))  # type: ignore[arg-type]
    other = call(G2, 3, admin=True)
    await cog.search.callback(cog, other, query="where can music bots play")  # type: ignore[arg-type]
    assert "No document matches" in other.texts()[0]
    await cog.list_documents.callback(cog, call(G2, 3, admin=True))  # type: ignore[arg-type]
    await cog.remove.callback(cog, rm := call(G2, 3, admin=True), name="rules.md")  # type: ignore[arg-type]
    assert "no document 'rules.md' in discord:502" in rm.texts()[0]
    assert await harness.svc.store.count("knowledge", "discord:501") == 2


async def test_bad_uploads_are_refused_and_change_nothing(cog: KnowledgeCog, harness: Harness) -> None:
    """Binary, empty and oversized attachments get a clear reason; the stored version stays."""
    await cog.add.callback(cog, call(G1, 1, admin=True), file=FakeAttachment("rules.md", RULES))  # type: ignore[arg-type]
    for att, why in [(FakeAttachment("rules.md", b"\x00\x01\x02"), "looks binary"),
                     (FakeAttachment("rules.md", b""), "is empty"),
                     (FakeAttachment("rules.md", b"x" * (harness.svc.knowledge.max_bytes + 1)), "the limit is"),
                     (FakeAttachment("photo.png", b"\x89PNG"), "unsupported file type")]:
        inter = call(G1, 1, admin=True)
        await cog.add.callback(cog, inter, file=att)  # type: ignore[arg-type]
        assert why in inter.texts()[0] and inter.texts()[0].startswith("Sorry:"), inter.texts()
    rec, _ = await harness.svc.knowledge.show("discord:501", "rules.md")
    assert rec.version == 1 and await harness.svc.store.count("knowledge", "discord:501") == 2


async def test_in_a_dm_admin_commands_are_refused(cog: KnowledgeCog) -> None:
    """Outside a server there is no server knowledge to change, even for a bot admin."""
    inter = call(None, OPERATOR)
    await cog.add.callback(cog, inter, file=FakeAttachment("rules.md", RULES))  # type: ignore[arg-type]
    assert "run this in the server" in inter.texts()[0]
