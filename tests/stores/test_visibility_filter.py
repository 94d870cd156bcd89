"""The stores' origin filter (``vis=``): both backends return only items of the allowed
origins from search and by_time; items without an origin never match a filter."""

from __future__ import annotations

import uuid

from bot.memory.embeddings import FastEmbedEmbedder
from bot.protocols import MemoryItem, VectorStore
from tests.stores.test_vector_stores import embedder, store  # noqa: F401 (fixtures)


async def test_search_and_by_time_filter_by_origin(
        store: VectorStore, embedder: FastEmbedEmbedder) -> None:  # noqa: F811
    """vis=[A] finds A's item only; vis=None finds all; a legacy item (no origin) is private."""
    texts = {"dm": "my dentist appointment is on friday", "g:x:A": "the dentist said friday",
             "": "legacy dentist note friday"}
    items = [MemoryItem(id=uuid.uuid4().hex, user="u", text=t, ts=1000.0 + n, role="user",
                        kind="user_message", meta={"vis": v} if v else {})
             for n, (v, t) in enumerate(texts.items())]
    await store.upsert("recall", items, await embedder.embed([i.text for i in items]))
    vec = (await embedder.embed(["dentist friday"]))[0]
    hits = await store.search("recall", "u", text="dentist friday", vector=vec, limit=10,
                              vis=["*", "g:x:A"])
    assert [h.item.text for h in hits] == [texts["g:x:A"]]
    assert len(await store.search("recall", "u", text="dentist friday", vector=vec, limit=10)) == 3
    listed = await store.by_time("recall", "u", vis=["g:x:A"])
    assert [i.text for i in listed] == [texts["g:x:A"]]
    assert await store.by_time("recall", "u", vis=[]) == []
