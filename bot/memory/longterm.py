"""Long-term memory of all users: recall (every message) and archival (kept notes), as
domain operations over the ``VectorStore`` and ``Embedder`` seams.

What is indexed (both the dense vector and the stores' BM25 vector, through
``meta[INDEX_KEY]``, which the stores index but do not keep): a recall turn as
``"Speaker: words"`` plus a slice of the turn it answers, ``"(after: ...)"`` (without
that turn's speaker, who did not say this one). Questions name people and answers lean
on the question before them: on LoCoMo hybrid evidence recall@10 goes 0.56 (raw text)
-> 0.70 (speaker) -> 0.77 (speaker + previous turn); dense alone 0.25 -> 0.50 -> 0.56.
The slice is at most as long as the turn's own words: a short statement ("I prefer minimal
dependencies") after a long answer with code was embedded mostly as that answer (chat dev
set r@10 0.79 -> 0.87 in bench.devsets' simulation, LoCoMo dev unchanged at 0.75-0.76).
Archival notes and tool results are indexed as they are.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any

from bot.memory import forgetting, visibility
from bot.messages import Message, safe_text
from bot.protocols import (
    INDEX_KEY,
    VIS_KEY,
    Collection,
    Embedder,
    Hit,
    MemoryItem,
    SearchMode,
    VectorStore,
)

CONTEXT_GAP_S = 6 * 3600.0  # turns further apart are separate conversations
CONTEXT_CHARS = 200  # how much of the previous turn is indexed with a turn
RRF_K = 2  # fusion of the plain and the time-window rankings (as the stores' own RRF)
PREFER_WEIGHT = 0.5  # the window's ranking counts half: the words are the query, the date a
# hint (LoCoMo dated questions: r@10 0.65 plain, 0.71 at 0.5, 0.69 at 1.0, 0.44 as a filter)
TURN_KINDS = ("user_message", "assistant")
_QUIET_TOOLS = {"send_message", "conversation_search", "conversation_search_date",
                "archival_memory_search", "knowledge_search", "pause_heartbeats"}  # not memory: not indexed
_HEADER = re.compile(r"^\[user(?: ([^,\]]+))?, [^\]]*\]\s*")  # bot.agent.loop.event_message


def recall_item(user: str, msg: Message) -> MemoryItem:
    # the optional fields of the message's own serialization (item_message reverses it)
    meta = {k: v for k, v in msg.to_dict().items()
            if k in ("tool_calls", "tool_call_id", "name", "event_id", VIS_KEY)}
    return MemoryItem(id=msg.id, user=user, text=msg.content, ts=msg.ts, role=msg.role,
                      kind=msg.kind, meta=meta)


def archival_item(user: str, text: str, source: str = "agent", ts: float | None = None, *,
                  importance: int | None = None, topic: str = "", vis: str = "") -> MemoryItem:
    """A new archival note dated ``ts`` (when it was said); optional importance 1-5 and topic
    (bot.memory.forgetting)."""
    meta: dict[str, object] = {}
    if importance is not None:
        meta["importance"] = importance
    if topic:
        meta["topic"] = topic
    if vis:  # where it was saved (bot.memory.visibility)
        meta[VIS_KEY] = vis
    return MemoryItem(id=uuid.uuid4().hex, user=user, text=text,
                      ts=time.time() if ts is None else ts, role=source, kind="passage", meta=meta)


def item_message(item: MemoryItem) -> Message:
    """Rebuild a FIFO message from its recall item."""
    d = {"role": item.role, "content": item.text, "kind": item.kind, "ts": item.ts, "id": item.id}
    d.update(item.meta)
    return Message.from_dict(d)


def wants_vector(item: MemoryItem) -> bool:
    return item.kind != "tool_result"


# --- what a turn says, and who said it ---------------------------------------------------------
def speaker(item: MemoryItem) -> str:
    """Who wrote a recall item: the imported speaker name, the user's display name, or the role."""
    name = item.meta.get("name")
    if isinstance(name, str) and name and item.role in ("user", "assistant", "system"):
        return name
    m = _HEADER.match(item.text) if item.kind == "user_message" else None
    return m.group(1).strip() if m and m.group(1) else item.role or "note"


def _calls(item: MemoryItem) -> list[tuple[str, dict[str, object]]]:
    out = []
    for call in item.meta.get("tool_calls") or []:
        try:
            args = json.loads(call.get("arguments") or "{}")
        except (json.JSONDecodeError, AttributeError):
            args = {}
        out.append((str(call.get("name", "")), args if isinstance(args, dict) else {}))
    return out


def words(item: MemoryItem, *, calls: bool = False) -> str:
    """What a turn says: a user message without its event header; an assistant turn's text
    and sent messages (and, with ``calls``, the arguments of memory-editing tool calls)."""
    text = _HEADER.sub("", item.text, count=1) if item.kind == "user_message" else item.text
    parts = [text.strip()]
    for name, args in _calls(item):
        if name == "send_message":
            parts.append(str(args.get("message", "")).strip())
        elif calls and name not in _QUIET_TOOLS:
            parts.append(f"{name} " + " ".join(str(v) for v in args.values()
                                               if not isinstance(v, bool)))
    return " ".join(p for p in parts if p)


def is_turn(item: MemoryItem) -> bool:
    """A conversation turn (shown as context, indexed with context), not tool traffic."""
    return item.kind in TURN_KINDS and bool(words(item))


def embed_text(item: MemoryItem, before: MemoryItem | None = None) -> str:
    """The text indexed for an item; ``before`` is the turn it answers (recall only)."""
    if item.kind == "passage" or item.kind == "tool_result":
        return item.text[:2000] or item.kind
    own = words(item, calls=True) or item.kind
    text = f"{speaker(item)}: {own}"
    if before is not None:  # no name: not who said this; never more than the turn's own words
        text += f"\n(after: {words(before)[:min(CONTEXT_CHARS, len(own))]})"
    return text[:2000]


def staged_notes(ops: Iterable[dict[str, Any]]) -> list[MemoryItem]:
    """The archival notes that staged writes (``bot.agent.toolcontext``, ``apply``) upsert."""
    return [MemoryItem(**op["item"]) for op in ops
            if op.get("op") == "upsert" and op.get("collection") == "archival"]


def fuse(rankings: Sequence[Sequence[Hit]], weights: Sequence[float], k: int = RRF_K) -> list[Hit]:
    """Weighted reciprocal-rank fusion; ties keep the order of the first ranking they are in."""
    score: dict[str, float] = {}
    first: dict[str, Hit] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, hit in enumerate(ranking):
            score[hit.item.id] = score.get(hit.item.id, 0.0) + weight / (k + rank + 1)
            first.setdefault(hit.item.id, hit)
    order = sorted(first, key=lambda i: -score[i])  # stable: first-seen order breaks ties
    return [Hit(first[i].item, score[i]) for i in order]


LAST_TURN_CACHE = 10_000  # users whose newest indexed turn is kept in memory


class LongTermMemory:
    """Writes and searches recall and archival items, always scoped to one user."""

    def __init__(self, store: VectorStore, embedder: Embedder,
                 on_search: Callable[[str, float], None] | None = None,
                 curve: forgetting.Curve | None = None) -> None:
        self.store = store
        self.embedder = embedder
        self.curve = curve or forgetting.Curve()  # archival ranking (bot.memory.forgetting)
        self.on_search = on_search  # (collection, seconds in the store) for metrics
        self._last_turn: OrderedDict[str, MemoryItem] = OrderedDict()  # user -> newest turn
        # a user's staged writes the recall writer has not carried out yet (set by the service)
        self.pending: Callable[[str], Awaitable[list[dict[str, Any]]]] | None = None

    async def write(self, collection: Collection, items: Sequence[MemoryItem]) -> None:
        """Embed and store. Tool results get no dense vector (an empty one): they are kept
        for history and words, but their meaning is the call's, which is embedded. Recall
        turns are indexed with the turn before them (see the module docstring)."""
        if not items:
            return
        todo = [i for i, item in enumerate(items) if wants_vector(item)]
        texts = [safe_text(t) for t in await self._index_texts(collection, [items[i] for i in todo])]
        dense = await self.embedder.embed(texts)
        vectors: list[Sequence[float]] = [[] for _ in items]
        indexed = list(items)
        for i, vec, text in zip(todo, dense, texts, strict=True):
            vectors[i] = vec
            indexed[i] = replace(items[i], meta={**items[i].meta, INDEX_KEY: text})
        await self.store.upsert(collection, indexed, vectors)

    async def _index_texts(self, collection: Collection, items: Sequence[MemoryItem]) -> list[str]:
        if collection != "recall":
            return [embed_text(item) for item in items]
        first: dict[str, float] = {}
        for item in items:
            first[item.user] = min(item.ts, first.get(item.user, item.ts))
        found = await asyncio.gather(*(self._turn_before(u, ts) for u, ts in first.items()))
        before = dict(zip(first, found, strict=True))
        last: dict[str, MemoryItem] = {}
        out: dict[int, str] = {}
        for n in sorted(range(len(items)), key=lambda n: items[n].ts):
            item, prev = items[n], before[items[n].user]
            near = (prev is not None and item.ts - prev.ts <= CONTEXT_GAP_S
                    and prev.meta.get(VIS_KEY) == item.meta.get(VIS_KEY))  # no DM words in a channel item's index
            out[n] = embed_text(item, prev if near else None)
            if is_turn(item):
                before[item.user] = last[item.user] = item
        for user, item in last.items():
            self._remember(user, item)
        return [out[n] for n in range(len(items))]

    def _remember(self, user: str, item: MemoryItem) -> None:
        self._last_turn[user] = item
        self._last_turn.move_to_end(user)
        while len(self._last_turn) > LAST_TURN_CACHE:
            self._last_turn.popitem(last=False)

    async def _turn_before(self, user: str, ts: float) -> MemoryItem | None:
        cached = self._last_turn.get(user)
        if cached is not None and cached.ts <= ts:  # this process wrote the user's last turn
            return cached
        recent = await self.store.by_time("recall", user, since=ts - CONTEXT_GAP_S, until=ts,
                                          limit=8, newest_first=True)
        return next((i for i in recent if is_turn(i)), None)

    async def insert_archival(self, user: str, text: str, source: str = "agent",
                              ts: float | None = None, *, importance: int | None = None,
                              topic: str = "", vis: str = "") -> str:
        """Save a note (see ``save_note``); returns its id."""
        return (await self.save_note(user, text, source, ts, importance=importance, topic=topic,
                                     vis=vis))[0]

    async def save_note(self, user: str, text: str, source: str = "agent", ts: float | None = None,
                        *, importance: int | None = None, topic: str = "",
                        vis: str = "") -> tuple[str, list[MemoryItem]]:
        """Save a note dated ``ts`` (when it was said). With a ``topic``, this user's current
        notes on the same topic said earlier are superseded by it (kept, with ``valid_to``).
        Returns the note's id and the notes it superseded."""
        item = archival_item(user, text, source, ts, importance=importance, topic=topic, vis=vis)
        await self.write("archival", [item])
        replaced = await self.supersede(user, item) if topic else []
        return item.id, replaced

    async def superseded_by(self, user: str, new: MemoryItem,
                            extra: Sequence[MemoryItem] = ()) -> list[MemoryItem]:
        """This user's current notes on ``new``'s topic said before it and visible where
        ``new`` was said (a channel note never retires a DM note), as they become once ``new``
        supersedes them (``valid_to``, ``superseded_by``); nothing is written. Notes not yet
        stored count too: ``extra`` (this step's) and ``pending(user)`` (earlier steps' still
        queued for the writer); the newest version of a note wins."""
        topic = new.meta.get("topic")
        if not topic:
            return []
        queued = staged_notes(await self.pending(user)) if self.pending is not None else []
        notes = {i.id: i for i in [*await self.all_items("archival", user), *queued, *extra]}
        view = str(new.meta.get(VIS_KEY) or visibility.DM)
        old = [i for i in notes.values()
               if i.id != new.id and i.meta.get("topic") == topic and not i.meta.get("valid_to")
               and i.ts <= new.ts and visibility.visible(str(i.meta.get(VIS_KEY, "")), view)]
        return [replace(i, meta={**i.meta, "valid_to": new.ts, "superseded_by": new.id}) for i in old]

    async def supersede(self, user: str, new: MemoryItem) -> list[MemoryItem]:
        """Mark this user's current notes on ``new``'s topic, said before it, as superseded."""
        old = await self.superseded_by(user, new)
        await self.store.set_meta("archival", user, {i.id: i.meta for i in old})
        return old

    async def all_items(self, collection: Collection, user: str, chunk: int = 500) -> list[MemoryItem]:
        """Every item of this user in ``collection``, oldest first."""
        out: list[MemoryItem] = []
        while True:
            got = await self.store.by_time(collection, user, limit=chunk, offset=len(out))
            out += got
            if len(got) < chunk:
                return out

    async def touch(self, user: str, items: Sequence[MemoryItem], now: float) -> None:
        """Count one more use of these archival notes (shown in a search result page)."""
        await self.store.set_meta("archival", user, {i.id: forgetting.touched(i, now) for i in items})

    async def apply(self, op: dict[str, Any]) -> None:
        """Carry out a durable write a step staged (see ``bot.agent.toolcontext``)."""
        collection: Collection = "archival" if op.get("collection") == "archival" else "recall"
        if op.get("op") == "upsert":
            item = MemoryItem(**op["item"])
            if collection == "archival":
                item = await self._not_older(item)
            await self.write(collection, [item])
        elif op.get("op") == "delete":
            await self.store.delete(collection, str(op["user"]), [str(i) for i in op["ids"]])

    async def _not_older(self, item: MemoryItem) -> MemoryItem:
        """A staged note as it may be written over the stored one: ops are applied at commit
        and replayed later by the writer, so an earlier step's copy can arrive after a later
        step's change. Supersession and use counts only move forward, so keep the stored ones."""
        stored = await self.store.get("archival", item.user, [item.id])
        if not stored:
            return item
        have, meta = stored[0].meta, dict(item.meta)
        if have.get("valid_to") and not meta.get("valid_to"):
            meta["valid_to"], meta["superseded_by"] = have["valid_to"], have.get("superseded_by")
        for key in ("uses", "last_used"):
            if isinstance(have.get(key), (int, float)) and have[key] > (meta.get(key) or 0):
                meta[key] = have[key]
        return replace(item, meta=meta)

    async def search(
        self,
        collection: Collection,
        user: str,
        query: str,
        *,
        limit: int,
        offset: int = 0,
        since: float | None = None,
        until: float | None = None,
        mode: SearchMode = "hybrid",
        prefer: tuple[float, float] | None = None,
        weights: Sequence[float] | None = None,
        vis: Sequence[str] | None = None,
    ) -> list[Hit]:
        """Best matches of one user's items. ``since``/``until`` filter; ``prefer`` is a
        soft window: the ranking within it is fused with the plain one, so items from then
        rank higher without hiding the rest. ``vis``: only items of those origins."""
        query = safe_text(query)  # model output may hold lone surrogates; encoders refuse them
        vector = None
        if mode != "sparse":
            vector = (await self.embedder.embed([query]))[0]
        started = time.perf_counter()
        depth = limit + offset if prefer else limit
        windows = [(since, until)]
        if prefer is not None:
            lo = prefer[0] if since is None else max(since, prefer[0])
            hi = prefer[1] if until is None else min(until, prefer[1])
            windows += [(lo, hi)] if lo < hi else []
        rankings = await asyncio.gather(*(
            self.store.search(collection, user, text=query, vector=vector, limit=depth,
                              offset=0 if prefer else offset, since=lo, until=hi, mode=mode,
                              weights=weights, vis=vis)
            for lo, hi in windows))
        hits = rankings[0] if len(rankings) == 1 else fuse(rankings, [1.0, PREFER_WEIGHT])
        if self.on_search:
            self.on_search(collection, time.perf_counter() - started)
        return hits[offset:offset + limit] if prefer else hits

    async def by_time(self, collection: Collection, user: str, *, since: float | None = None,
                      until: float | None = None, limit: int = 50, offset: int = 0,
                      newest_first: bool = False,
                      vis: Sequence[str] | None = None) -> list[MemoryItem]:
        return await self.store.by_time(collection, user, since=since, until=until, limit=limit,
                                        offset=offset, newest_first=newest_first, vis=vis)

    async def counts(self, user: str) -> tuple[int, int]:
        return (await self.store.count("recall", user), await self.store.count("archival", user))

    async def recent_messages(self, user: str, limit: int) -> list[Message]:
        items = await self.store.by_time("recall", user, limit=limit, newest_first=True)
        return [item_message(i) for i in reversed(items)]

    async def delete_user(self, user: str) -> dict[str, int]:
        """Delete every item and document of one user; counts per collection."""
        self._last_turn.pop(user, None)  # no context from deleted turns in later index texts
        counts = {"recall": await self.store.delete("recall", user),
                  "archival": await self.store.delete("archival", user)}
        await self.store.delete_docs(user)  # snapshot, audit trail, links
        return counts
