"""Knowledge base: versions, exact replacement, removal, failures that change nothing,
scope isolation, drift — over the real embedded Qdrant engine and the real embedder."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest

from bot.errors import KnowledgeError, StoreError

HANDBOOK = b"""# Handbook

Welcome to the team handbook.

## Vacation

Everyone gets 30 days of paid vacation per year. Ask your lead two weeks ahead.

## Expenses

Submit receipts within 30 days through the expense tool.

## Security

Use a password manager and turn on two-factor login.
"""
FAQ = b"# FAQ\n\n## Billing\n\nInvoices are sent on the first day of each month.\n"


async def points(store: Any, scope: str) -> int:
    return int(await store.count("knowledge", scope))


async def test_add_search_replace_and_remove_with_versions(kb: Any, store: Any) -> None:
    """v1 added, same bytes skipped, a change makes v2 (history says what changed), remove
    deletes every chunk but keeps the history numbering."""
    a = await kb.add("discord:1", "handbook.md", HANDBOOK, actor="alice")
    assert (a.status, a.version, a.chunks) == ("added", 1, 4)
    same = await kb.add("discord:1", "handbook.md", HANDBOOK, actor="bob")
    assert (same.status, same.version) == ("unchanged", 1)
    hits = await kb.search(["discord:1"], "how many vacation days do I get", limit=3)
    assert hits[0].section == "Vacation" and hits[0].title == "Handbook" and "30 days" in hits[0].text

    b = await kb.add("discord:1", "handbook.md", HANDBOOK.replace(b"30 days of paid", b"25 days of paid"),
                     actor="bob")
    assert (b.status, b.version, b.change.added, b.change.removed, b.change.kept) == ("updated", 2, 1, 1, 3)
    assert b.change.sections == ["Vacation"]
    assert await points(store, "discord:1") == 4  # the old version's chunks are gone
    top = (await kb.search(["discord:1"], "how many vacation days", limit=1))[0]
    assert "25 days" in top.text and top.version == 2
    rec, history = await kb.show("discord:1", "handbook.md")
    assert rec.version == 2 and [(e["version"], e["by"], e["action"]) for e in history] == [
        (1, "alice", "added"), (2, "bob", "updated")]

    gone = await kb.remove("discord:1", "handbook.md", actor="carol")
    assert gone.status == "removed" and await points(store, "discord:1") == 0
    assert await kb.search(["discord:1"], "vacation", limit=3) == []
    back = await kb.add("discord:1", "handbook.md", HANDBOOK, actor="alice")
    assert back.version == 3  # numbering goes on after a removal


async def test_a_changed_file_replaces_exactly_its_own_chunks(kb: Any, store: Any) -> None:
    """Replacing one document leaves other documents' chunks (same scope and others) as they were."""
    await kb.add("slack:T1", "handbook.md", HANDBOOK, actor="a")
    await kb.add("slack:T1", "faq.md", FAQ, actor="a")
    await kb.add("slack:T2", "handbook.md", HANDBOOK, actor="a")
    before_faq = await kb.search(["slack:T1"], "invoices first day of month", limit=1)
    new = HANDBOOK.replace(b"## Security\n\nUse a password manager and turn on two-factor login.\n", b"")
    out = await kb.add("slack:T1", "handbook.md", new, actor="b")
    assert (out.chunks, out.change.removed, out.change.added) == (3, 1, 0)
    assert await points(store, "slack:T1") == 3 + 1
    assert await points(store, "slack:T2") == 4
    after_faq = await kb.search(["slack:T1"], "invoices first day of month", limit=1)
    assert [(h.source, h.version, h.text) for h in after_faq] == [
        (h.source, h.version, h.text) for h in before_faq]
    sources = {h.source for h in await kb.search(["slack:T1"], "password manager two-factor", limit=5)}
    assert sources == {"faq.md", "handbook.md"}  # handbook still matches, but not its security part
    hits = await kb.search(["slack:T1"], "password manager two-factor", limit=5)
    assert all(h.section != "Security" for h in hits)


@pytest.mark.parametrize(("method", "what"), [("upsert", "knowledge"), ("put_doc", "catalog"),
                                              ("put_doc", "hashes")])
async def test_a_failure_before_the_switch_leaves_the_previous_version(
        failing: Any, store: Any, method: str, what: str) -> None:
    """A crash while writing a new version (chunks, hashes or the catalog switch) keeps v1
    current and searchable, never returns a half-written v2, and a retry then succeeds."""
    kb, wrapped = failing
    await kb.add("discord:9", "handbook.md", HANDBOOK, actor="a")
    v2 = HANDBOOK.replace(b"30 days of paid", b"25 days of paid") + b"\n## Parking\n\nPark in lot B.\n"
    wrapped.fail_on = (method, what)
    with pytest.raises(StoreError):
        await kb.add("discord:9", "handbook.md", v2, actor="b")
    rec, _ = await kb.show("discord:9", "handbook.md")
    assert rec.version == 1
    hits = await kb.search(["discord:9"], "vacation days parking lot", limit=10)
    assert {h.version for h in hits} == {1} and all("25 days" not in h.text for h in hits)
    wrapped.fail_on = None
    ok = await kb.add("discord:9", "handbook.md", v2, actor="b")
    assert ok.version == 2 and await points(store, "discord:9") == ok.chunks
    assert {h.version for h in await kb.search(["discord:9"], "vacation parking", limit=10)} == {2}


async def test_a_failure_after_the_switch_hides_old_chunks_and_cleans_them_later(
        failing: Any, store: Any) -> None:
    """If deleting the old chunks fails, the new version is current, the old chunks are never
    returned, and the next write to the scope deletes them."""
    kb, wrapped = failing
    await kb.add("discord:8", "handbook.md", HANDBOOK, actor="a")
    wrapped.fail_on = ("delete", "knowledge")
    with pytest.raises(StoreError):
        await kb.add("discord:8", "handbook.md", HANDBOOK.replace(b"30 days", b"20 days"), actor="b")
    assert await points(store, "discord:8") == 8  # both versions' chunks are stored...
    hits = await kb.search(["discord:8"], "vacation days", limit=10)
    assert {h.version for h in hits} == {2} and len(hits) == 4  # ...only v2 is found
    wrapped.fail_on = None
    await kb.add("discord:8", "faq.md", FAQ, actor="a")
    assert await points(store, "discord:8") == 4 + 1


async def test_bad_files_change_nothing(kb: Any, store: Any) -> None:
    """Binary, empty, huge and wrongly encoded files are refused; the stored version and the
    catalog stay exactly as they were."""
    await kb.add("global", "handbook.md", HANDBOOK, actor="a")
    before = (await kb.catalog("global")).to_dict()
    for name, data in [("handbook.md", b"\x00\x01\x02binary"), ("handbook.md", b""),
                       ("handbook.md", b"x " * 200_001), ("handbook.md", "é".encode("latin-1") * 10),
                       ("handbook.exe", b"MZ\x90\x00")]:
        with pytest.raises(KnowledgeError):
            await kb.add("global", name, data, actor="mallory")
    assert (await kb.catalog("global")).to_dict() == before
    assert await points(store, "global") == 4


async def test_bad_scope_and_unknown_document_are_refused(kb: Any) -> None:
    """A malformed scope or removing a document that is not there raises KnowledgeError."""
    with pytest.raises(KnowledgeError, match="not a knowledge scope"):
        await kb.add("discord:-", "a.md", FAQ, actor="a")
    with pytest.raises(KnowledgeError, match="no document"):
        await kb.remove("global", "missing.md", actor="a")


async def test_scope_isolation_randomized(kb: Any) -> None:
    """Random documents over random guilds/workspaces: a search for a place returns only that
    place's documents and the global ones, whatever the query."""
    rng = random.Random(1313)
    topics = ["vacation days", "parking lot", "billing invoices", "voice channel rules", "server roles",
              "password manager", "release notes", "refund policy", "music bot", "office hours"]
    scopes = [f"discord:{100 + i}" for i in range(4)] + ["slack:TA", "slack:TB", "global"]
    owner: dict[tuple[str, str], str] = {}
    for n in range(24):
        scope = rng.choice(scopes)
        words = rng.sample(topics, 3)
        body = "\n\n".join(f"## {w.title()}\n\nAbout {w} in place {scope}: detail {rng.random():.4f}."
                           for w in words)
        source = f"doc{n}.md"
        await kb.add(scope, source, f"# Doc {n}\n\n{body}\n".encode(), actor="a")
        owner[(scope, source)] = scope
    for _ in range(30):
        place = rng.choice(scopes[:-1])
        query = " ".join(rng.sample(topics, 2))
        hits = await kb.search([place, "global"], query, limit=8)
        assert hits, query
        assert all(h.scope in (place, "global") and owner[(h.scope, h.source)] == h.scope for h in hits)


async def test_drift_counts_chunks_changed_since_a_date(kb: Any) -> None:
    """Drift: new or changed chunks since the date (plus removed ones) over current chunks."""
    await kb.add("slack:T5", "handbook.md", HANDBOOK, actor="a")
    await kb.add("slack:T5", "faq.md", FAQ, actor="a")
    mark = time.time()
    assert (await kb.catalog("slack:T5")).drift(mark + 1) == 0.0
    assert (await kb.catalog("slack:T5")).drift(0) == 1.0
    await kb.add("slack:T5", "handbook.md", HANDBOOK.replace(b"30 days of", b"28 days of"), actor="b")
    assert (await kb.catalog("slack:T5")).drift(mark) == pytest.approx(1 / 5)
    await kb.remove("slack:T5", "faq.md", actor="b")
    assert (await kb.catalog("slack:T5")).drift(mark) == pytest.approx(2 / 5)
