"""Reorganization of one user's archival notes, without an LLM: what `membot memory
reorganize` and heartbeats run.

1. Exact duplicates (same words, case and spacing aside) become one note: the first said
   is kept (its date is when the fact was first said), with the uses and the highest
   importance of the copies; the copies are deleted (nothing is lost: same text).
2. Supersession by topic: of the current notes sharing a ``topic``, all but the latest
   said are marked superseded by it (``valid_to`` = when the latest was said).
3. Near-duplicates (cosine similarity >= ``threshold``) among the remaining current notes:
   the older is marked superseded by the newer and kept as history. Only when both are
   said by the same source; never deleted, so a wrong link costs rank, not a fact.

Report: what was (or, with ``dry_run``, would be) done.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bot.memory.forgetting import importance
from bot.memory.longterm import LongTermMemory, embed_text
from bot.protocols import MemoryItem


@dataclass
class Report:
    user: str
    notes: int = 0
    merged: list[tuple[str, list[str]]] = field(default_factory=list)  # kept id, deleted copies
    superseded: list[tuple[str, str, str]] = field(default_factory=list)  # old id, new id, why
    dry_run: bool = False

    def counts(self) -> dict[str, int]:
        return {"notes": self.notes, "duplicates_deleted": sum(len(c) for _, c in self.merged),
                "superseded": len(self.superseded)}

    def as_dict(self) -> dict[str, Any]:
        return {"user": self.user, "dry_run": self.dry_run, **self.counts(),
                "merged": [{"kept": k, "deleted": c} for k, c in self.merged],
                "superseded_notes": [{"old": o, "new": n, "why": w} for o, n, w in self.superseded]}


def _key(item: MemoryItem) -> str:
    return " ".join(item.text.lower().split())


async def reorganize(memory: LongTermMemory, user: str, threshold: float, *,
                     dry_run: bool = False) -> Report:
    notes = await memory.all_items("archival", user)
    report = Report(user, len(notes), dry_run=dry_run)
    keep: dict[str, MemoryItem] = {}
    copies: dict[str, list[MemoryItem]] = {}
    for note in sorted(notes, key=lambda i: i.ts):
        if _key(note) in keep:
            copies.setdefault(_key(note), []).append(note)
        else:
            keep[_key(note)] = note
    metas: dict[str, dict[str, Any]] = {}
    for key, extra in copies.items():
        first = keep[key]
        group = [first, *extra]
        meta = {**first.meta, "uses": sum(int(i.meta.get("uses") or 0) for i in group),
                "importance": max(importance(i) for i in group)}
        metas[first.id] = meta
        keep[key] = MemoryItem(first.id, first.user, first.text, first.ts, first.role, first.kind, meta)
        report.merged.append((first.id, [i.id for i in extra]))
    current = sorted((i for i in keep.values() if not i.meta.get("valid_to")), key=lambda i: i.ts)
    newer: dict[str, tuple[MemoryItem, str]] = {}
    latest: dict[str, MemoryItem] = {}
    for note in current:  # oldest first: the last one on a topic is its current fact
        topic = note.meta.get("topic")
        if topic:
            if topic in latest:
                newer[latest[topic].id] = (note, f"topic {topic}")
            latest[topic] = note
    rest = [i for i in current if i.id not in newer]
    for old, new in await _near_pairs(memory, rest, threshold):
        newer.setdefault(old.id, (new, "near-duplicate"))
    by_id = {i.id: i for i in keep.values()}
    for old_id, (new, why) in newer.items():
        metas[old_id] = {**by_id[old_id].meta, **metas.get(old_id, {}), "valid_to": new.ts,
                         "superseded_by": new.id}
        report.superseded.append((old_id, new.id, why))
    if not dry_run:
        await memory.store.set_meta("archival", user, metas)
        doomed = [i for _, c in report.merged for i in c]
        if doomed:
            await memory.store.delete("archival", user, doomed)
    return report


async def _near_pairs(memory: LongTermMemory, notes: list[MemoryItem],
                      threshold: float) -> list[tuple[MemoryItem, MemoryItem]]:
    """(older, newer) pairs of notes from one source with cosine similarity >= threshold."""
    if len(notes) < 2:
        return []
    vecs = np.asarray(await memory.embedder.embed([embed_text(i) for i in notes]), dtype=np.float32)
    vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-9)
    sims = vecs @ vecs.T
    pairs = []
    for a in range(len(notes)):  # notes are oldest first: pair each with its newest close match
        close = [b for b in range(a + 1, len(notes))
                 if sims[a, b] >= threshold and notes[a].role == notes[b].role]
        if close:
            pairs.append((notes[a], notes[close[-1]]))
    return pairs
