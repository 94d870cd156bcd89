"""archival_memory_merge: find near-duplicate archival notes of one user and replace a
group of them by one merged note (used by reflections between conversations).

Listing looks at the user's newest notes and their close matches (cosine similarity above
``archival_merge_threshold``); merging accepts only ids of one listed group, inserts the
merged note first and then deletes the originals, so a crash leaves duplicates, never a loss.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from bot.agent.toolcontext import ToolContext
from bot.errors import ToolError
from bot.memory import visibility
from bot.memory.longterm import LongTermMemory, archival_item, embed_text
from bot.messages import stamp
from bot.protocols import VIS_KEY, MemoryItem

SCAN = 20  # newest archival notes whose near-duplicates are looked for
NEIGHBOURS = 6
SHOW_GROUPS = 5
SHORT_ID = 8


def clusters(pairs: Iterable[tuple[str, str]]) -> list[set[str]]:
    """Connected components of near-duplicate links."""
    groups: list[set[str]] = []
    for a, b in pairs:
        joined = {a, b}.union(*(g for g in groups if a in g or b in g))
        groups = [g for g in groups if a not in g and b not in g] + [joined]
    return groups


async def duplicate_groups(memory: LongTermMemory, user: str, threshold: float,
                           vis: Sequence[str] | None = None) -> list[list[MemoryItem]]:
    """Groups of this user's archival notes (of the origins ``vis`` allows) similar above
    ``threshold`` to a recent note, newest group first, each oldest first."""
    pool = await memory.by_time("archival", user, limit=SCAN, newest_first=True, vis=vis)
    if not pool:
        return []
    vectors = await memory.embedder.embed([embed_text(i) for i in pool])
    items = {i.id: i for i in pool}
    pairs: list[tuple[str, str]] = []
    for item, vec in zip(pool, vectors, strict=True):
        for hit in await memory.store.search("archival", user, text=item.text, vector=vec,
                                             limit=NEIGHBOURS, mode="dense", vis=vis):
            if hit.item.id != item.id and hit.score >= threshold:
                items.setdefault(hit.item.id, hit.item)
                pairs.append((item.id, hit.item.id))
    groups = [sorted((items[i] for i in g), key=lambda i: i.ts) for g in clusters(pairs)]
    return sorted(groups, key=lambda g: -g[-1].ts)


def render_groups(groups: list[list[MemoryItem]]) -> str:
    if not groups:
        return "No near-duplicate notes."
    lines = ["Near-duplicates; merge a group with ids and content:"]
    for g in groups[:SHOW_GROUPS]:
        lines.append("ids=" + ",".join(i.id[:SHORT_ID] for i in g))
        lines += [f"- {i.id[:SHORT_ID]} [{stamp(i.ts)}] {' '.join(i.text.split())[:200]}" for i in g]
    if len(groups) > SHOW_GROUPS:
        lines.append(f"({len(groups) - SHOW_GROUPS} more groups)")
    return "\n".join(lines)


def pick(raw: str, groups: list[list[MemoryItem]]) -> list[MemoryItem]:
    """The notes named by (short) ids; all must be listed and in one group."""
    group_of = {i.id: n for n, g in enumerate(groups) for i in g}
    items = {i.id: i for g in groups for i in g}
    chosen: set[str] = set()
    for word in filter(None, (w.strip().lstrip("#").lower() for w in raw.replace(" ", ",").split(","))):
        found = [k for k in group_of if len(word) >= 4 and k.startswith(word)]
        if len(found) != 1:
            raise ToolError(f"'{word}' is not a listed near-duplicate; call without ids to list them")
        chosen.add(found[0])
    if len(chosen) < 2:
        raise ToolError("give at least two ids of one group")
    if len({group_of[k] for k in chosen}) > 1:
        raise ToolError("those notes are not near-duplicates of each other; merge one group at a time")
    return [items[k] for k in sorted(chosen)]


async def merge(ctx: ToolContext, a: dict[str, Any]) -> str:
    """archival_memory_merge: list near-duplicate groups, or replace one group by a note."""
    user = ctx.state.user
    groups = await duplicate_groups(ctx.memory, user, ctx.settings.archival_merge_threshold,
                                    ctx.allowed)
    if not a.get("ids", "").strip():
        if a.get("content", "").strip():
            raise ToolError("give the ids to merge (call without arguments to list them)")
        return render_groups(groups)
    if ctx.state.memory_paused:
        return "Not merged: the person paused memory (/memory pause)."
    old = pick(a["ids"], groups)
    content = a.get("content", "").strip()
    if not content:
        raise ToolError("content (the merged note) is empty")
    vis = visibility.merged(str(i.meta.get(VIS_KEY, "")) for i in old)  # never more public
    ctx.stage_archival(archival_item(user, content, ts=ctx.now, vis=vis))  # both go out at commit,
    ctx.stage_archival_delete([i.id for i in old])  # insert first: a crash keeps both
    n = len(old)
    ctx.state.n_archival = max(0, ctx.state.n_archival + 1 - n)
    ctx.state.last_edit = ctx.now
    return f"Merged {n} notes into one."
