"""Long-term memory of all users: recall (every message) and archival (kept notes), as
domain operations over the ``VectorStore`` and ``Embedder`` seams."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence

from bot.messages import Message
from bot.protocols import Collection, Embedder, Hit, MemoryItem, SearchMode, VectorStore


def recall_item(user: str, msg: Message) -> MemoryItem:
    meta: dict[str, object] = {}
    if msg.tool_calls:
        meta["tool_calls"] = [c.to_dict() for c in msg.tool_calls]
    if msg.tool_call_id:
        meta["tool_call_id"] = msg.tool_call_id
    if msg.name:
        meta["name"] = msg.name
    return MemoryItem(id=msg.id, user=user, text=msg.content, ts=msg.ts, role=msg.role,
                      kind=msg.kind, meta=meta)


def item_message(item: MemoryItem) -> Message:
    """Rebuild a FIFO message from its recall item."""
    d = {"role": item.role, "content": item.text, "kind": item.kind, "ts": item.ts, "id": item.id}
    d.update(item.meta)
    return Message.from_dict(d)


def wants_vector(item: MemoryItem) -> bool:
    return item.kind != "tool_result"


def embed_text(item: MemoryItem) -> str:
    calls = item.meta.get("tool_calls")
    if isinstance(calls, list) and calls:
        names = " ".join(f"{c.get('name', '')} {c.get('arguments', '')}" for c in calls)
        return f"{item.text} {names}".strip()[:2000]
    return item.text[:2000] or item.kind


class LongTermMemory:
    """Writes and searches recall and archival items, always scoped to one user."""

    def __init__(self, store: VectorStore, embedder: Embedder,
                 on_search: Callable[[str, float], None] | None = None) -> None:
        self.store = store
        self.embedder = embedder
        self.on_search = on_search  # (collection, seconds in the store) for metrics

    async def write(self, collection: Collection, items: Sequence[MemoryItem]) -> None:
        """Embed and store. Tool results get no dense vector (an empty one): they are kept
        for history and words, but their meaning is the call's, which is embedded."""
        if not items:
            return
        todo = [i for i, item in enumerate(items) if wants_vector(item)]
        dense = await self.embedder.embed([embed_text(items[i]) for i in todo])
        vectors: list[Sequence[float]] = [[] for _ in items]
        for i, vec in zip(todo, dense, strict=True):
            vectors[i] = vec
        await self.store.upsert(collection, items, vectors)

    async def insert_archival(self, user: str, text: str, source: str = "agent",
                              ts: float | None = None) -> str:
        item = MemoryItem(id=uuid.uuid4().hex, user=user, text=text,
                          ts=time.time() if ts is None else ts, role=source, kind="passage")
        await self.write("archival", [item])
        return item.id

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
    ) -> list[Hit]:
        vector = None
        if mode != "sparse":
            vector = (await self.embedder.embed([query]))[0]
        started = time.perf_counter()
        hits = await self.store.search(collection, user, text=query, vector=vector, limit=limit,
                                       offset=offset, since=since, until=until, mode=mode)
        if self.on_search:
            self.on_search(collection, time.perf_counter() - started)
        return hits

    async def by_time(self, collection: Collection, user: str, *, since: float | None = None,
                      until: float | None = None, limit: int = 50, offset: int = 0,
                      newest_first: bool = False) -> list[MemoryItem]:
        return await self.store.by_time(collection, user, since=since, until=until, limit=limit,
                                        offset=offset, newest_first=newest_first)

    async def counts(self, user: str) -> tuple[int, int]:
        return (await self.store.count("recall", user), await self.store.count("archival", user))

    async def recent_messages(self, user: str, limit: int) -> list[Message]:
        items = await self.store.by_time("recall", user, limit=limit, newest_first=True)
        return [item_message(i) for i in reversed(items)]

    async def delete_user(self, user: str) -> None:
        await self.store.delete("recall", user)
        await self.store.delete("archival", user)
        await self.store.delete_docs(user)
