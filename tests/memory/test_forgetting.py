"""Forgetting curve (bounded multiplier, pins, use counts) and supersession of archival notes,
over the real embedded Qdrant engine and the qdrant-client code path."""

from __future__ import annotations

from typing import Any

import pytest

from bot.memory import forgetting, search
from bot.memory.forgetting import Curve, multiplier
from bot.memory.longterm import LongTermMemory
from bot.protocols import MemoryItem

pytestmark = pytest.mark.filterwarnings("ignore:Payload indexes have no effect:UserWarning")
DAY = 86_400.0
T0 = 1.7e9


def note(ts: float, **meta: Any) -> MemoryItem:
    return MemoryItem(id=f"{int(ts):032x}", user="u", text="n", ts=ts, kind="passage", meta=meta)


def test_multiplier_stays_within_half_and_one_and_a_half() -> None:
    """However old, unused, important or used a note is, its weight stays in 0.5..1.5."""
    curve = Curve(a=5, b=5, c=5, half_life_days=1)
    for meta in ({}, {"importance": 1}, {"importance": 5}, {"uses": 1000, "last_used": T0 + 1000 * DAY}):
        for now in (T0, T0 + 10 * DAY, T0 + 10_000 * DAY):
            assert 0.5 <= multiplier(note(T0, **meta), now, curve) <= 1.5


def test_old_unused_notes_fade_used_and_important_ones_rise() -> None:
    """A year-old unused note weighs less than a fresh one; uses and importance lift it."""
    curve, now = Curve(), T0 + 365 * DAY
    old, fresh = multiplier(note(T0), now, curve), multiplier(note(now - DAY), now, curve)
    assert old < fresh
    assert multiplier(note(T0, uses=5, last_used=now - DAY), now, curve) > old
    assert multiplier(note(T0, importance=4), now, curve) > old


def test_a_pinned_note_never_fades() -> None:
    """Importance 5 pins a note: no time decay, never below 1x, however old."""
    assert multiplier(note(T0, importance=5), T0 + 5000 * DAY, Curve(c=5)) >= 1.0


def test_zero_weights_leave_the_ranking_alone() -> None:
    """a = b = c = 0: every note weighs exactly 1."""
    assert multiplier(note(T0, importance=1, uses=9), T0 + 900 * DAY, Curve(0, 0, 0)) == 1.0


async def test_a_newer_note_on_the_same_topic_supersedes_only_that_topic(memory: LongTermMemory) -> None:
    """Moving city marks the old city note superseded (kept, valid_to = when the move was said);
    a note on another topic and another user's note on the same topic are untouched."""
    old = await memory.insert_archival("u", "Alice lives in Denver.", ts=T0, topic="user.city")
    job = await memory.insert_archival("u", "Alice works at Acme.", ts=T0, topic="user.employer")
    other = await memory.insert_archival("v", "Bob lives in Denver.", ts=T0, topic="user.city")
    new, replaced = await memory.save_note("u", "Alice moved to Seattle.", ts=T0 + 30 * DAY, topic="user.city")
    assert [i.id for i in replaced] == [old]
    got = {i.id: i for i in await memory.all_items("archival", "u")}
    assert got[old].meta["valid_to"] == T0 + 30 * DAY and got[old].meta["superseded_by"] == new
    assert "valid_to" not in got[job].meta and "valid_to" not in got[new].meta
    assert "valid_to" not in (await memory.all_items("archival", "v"))[0].meta
    assert other


async def test_an_older_statement_saved_later_does_not_supersede_the_newer(memory: LongTermMemory) -> None:
    """Facts are dated by when they were said: saving a note said earlier leaves the current one current."""
    current = await memory.insert_archival("u", "Alice lives in Seattle.", ts=T0 + 30 * DAY, topic="user.city")
    _, replaced = await memory.save_note("u", "Alice lived in Denver.", ts=T0, topic="user.city")
    assert replaced == []
    assert "valid_to" not in (await memory.store.get("archival", "u", [current]))[0].meta


async def test_search_shows_the_current_fact_first_and_labels_the_old_one(memory: LongTermMemory) -> None:
    """The superseded note is listed after its replacement, marked 'superseded, until <date>'."""
    await memory.insert_archival("u", "The user lives in Seattle now, moved for the new job.",
                                 ts=T0, topic="user.city")
    await memory.insert_archival("u", "The user lives in Seattle.", ts=T0 + 40 * DAY, topic="user.city")
    text = await search.archival(memory, "u", "where does the user live", 0, 5, now=T0 + 41 * DAY)
    lines = [line for line in text.splitlines() if "Seattle" in line]
    assert "superseded" not in lines[0] and "(superseded, until 2023-12-24)" in lines[1]


async def test_showing_a_note_counts_a_use(memory: LongTermMemory) -> None:
    """A note shown on a search page gets uses + 1 and last_used = now; another user's is untouched."""
    mine = await memory.insert_archival("u", "Alice's dog is called Pepper.", ts=T0)
    theirs = await memory.insert_archival("v", "Bob's dog is called Pepper.", ts=T0)
    await search.archival(memory, "u", "dog name", 0, 5, now=T0 + DAY)
    await search.archival(memory, "u", "dog name", 0, 5, now=T0 + 2 * DAY)
    got = (await memory.store.get("archival", "u", [mine]))[0].meta
    assert got["uses"] == 2 and got["last_used"] == T0 + 2 * DAY
    assert "uses" not in (await memory.store.get("archival", "v", [theirs]))[0].meta


def test_current_first_follows_a_chain_of_replacements() -> None:
    """v1 -> v2 -> v3: whatever the scores, v3 comes before v2 before v1."""
    v3 = note(T0 + 2)
    v2 = note(T0 + 1, superseded_by=v3.id, valid_to=T0 + 2)
    v1 = note(T0, superseded_by=v2.id, valid_to=T0 + 1)
    from bot.protocols import Hit
    order = forgetting.current_first([Hit(v1, 3), Hit(v2, 2), Hit(note(T0 + 9), 1.5), Hit(v3, 1)])
    assert [h.item.ts for h in order] == [T0 + 9, T0 + 2, T0 + 1, T0]


async def test_a_channel_note_never_retires_a_dm_note(memory: LongTermMemory) -> None:
    """Supersession follows visibility: a note said in a server's channel cannot see, so cannot
    supersede, the person's DM note on the topic; a DM note (the person's own view) can."""
    dm = await memory.insert_archival("u", "Alice lives in Denver.", ts=T0, topic="user.city", vis="dm")
    _, replaced = await memory.save_note("u", "Alice lives in Oslo.", ts=T0 + DAY, topic="user.city",
                                         vis="g:discord:1")
    assert replaced == []
    _, replaced = await memory.save_note("u", "Alice lives in Rome.", ts=T0 + 2 * DAY, topic="user.city")
    assert sorted(i.text for i in replaced) == ["Alice lives in Denver.", "Alice lives in Oslo."]
    assert dm


async def test_a_replayed_older_copy_does_not_undo_supersession(memory: LongTermMemory) -> None:
    """The writer replays an earlier step's staged note after a later step superseded it (and
    the note was shown twice): valid_to and the use count stay; the text may still change."""
    from dataclasses import asdict

    from bot.memory.longterm import archival_item
    note = archival_item("u", "Alice lives in Denver.", ts=T0, topic="user.city")
    newer = {**note.meta, "valid_to": T0 + DAY, "superseded_by": "x", "uses": 2, "last_used": T0 + DAY}
    await memory.apply({"op": "upsert", "collection": "archival", "item": asdict(note) | {"meta": newer}})
    await memory.apply({"op": "upsert", "collection": "archival", "item": asdict(note)})  # the replay
    [got] = await memory.store.get("archival", "u", [note.id])
    assert got.meta["valid_to"] == T0 + DAY and got.meta["superseded_by"] == "x"
    assert got.meta["uses"] == 2 and got.meta["last_used"] == T0 + DAY and got.text == note.text
