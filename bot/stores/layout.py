"""How membot items map onto Qdrant points, shared by both backends (the embedded engine in
bot.stores.qdrant_edge and the server in bot.stores.qdrant_server): vector names, fusion
constants, point ids, payloads, and the per-user document points."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from typing import Any

from bot.protocols import INDEX_KEY, VIS_KEY, Collection, MemoryItem

COLLECTIONS: tuple[Collection, ...] = ("recall", "archival", "knowledge")
# knowledge: document chunks of a scope (bot.knowledge); the tenant field ``user`` holds the scope
DENSE = "dense"
SPARSE = "bm25"
RRF_K = 2  # Qdrant's default; on LoCoMo r@5 0.60 at k=2 vs 0.51 at the textbook k=60
# (dense, sparse): unequal only to break ties, which the engine otherwise orders at random
# between calls (unstable pages); sparse wins them as it is the stronger signal on LoCoMo.
RRF_WEIGHTS = [1.0, 1.01]
PREFETCH = 64  # candidates per signal; fused rankings depend on it, so it stays fixed for
# every page within it (stable pages). LoCoMo r@10 is flat from 30 to 200.
VIS_FIELD = f"meta.{VIS_KEY}"  # payload path of an item's origin, filtered by ``vis=``
_DOC_NS = uuid.UUID("6f1d3c1e-6a43-4f4e-9d1b-6d656d626f74")


def point_id(item_id: str) -> uuid.UUID:
    """Qdrant point id of an item id (a uuid hex; other strings are hashed to a uuid5)."""
    try:
        return uuid.UUID(hex=item_id)
    except ValueError:
        return uuid.uuid5(_DOC_NS, "item:" + item_id)


def doc_point_id(user: str, name: str) -> uuid.UUID:
    return uuid.uuid5(_DOC_NS, f"doc:{user}\x00{name}")


def item_payload(item: MemoryItem) -> dict[str, Any]:
    meta = {k: v for k, v in item.meta.items() if k != INDEX_KEY}
    return {"id": item.id, "user": item.user, "text": item.text, "ts": float(item.ts),
            "role": item.role, "kind": item.kind, "meta": meta}


def index_text(item: MemoryItem) -> str:
    """The text BM25 indexes: ``meta[INDEX_KEY]`` when the writer set one (speaker and
    context, see bot.memory.longterm), else the item's text. The index text itself is not stored."""
    text = item.meta.get(INDEX_KEY)
    return text if isinstance(text, str) and text else item.text


def payload_item(payload: dict[str, Any]) -> MemoryItem:
    meta = payload.get("meta")
    return MemoryItem(id=str(payload.get("id", "")), user=str(payload.get("user", "")),
                      text=str(payload.get("text", "")), ts=float(payload.get("ts", 0.0)),
                      role=str(payload.get("role", "")), kind=str(payload.get("kind", "")),
                      meta=meta if isinstance(meta, dict) else {})


def prefetch_limit(limit: int, offset: int) -> int:
    """Candidates each signal contributes to the fusion of one page: a constant depth, so
    that every page up to it is a slice of one and the same ranking."""
    return max(PREFETCH, offset + limit)


def dim_mismatch_message(stored: int, dim: int, where: str) -> str:
    return (f"stored vectors are {stored}-dim, embedder gives {dim}; set EMBEDDING_MODEL back "
            f"or use a new {where}")


def doc_payload(user: str, name: str, doc: dict[str, Any]) -> dict[str, Any]:
    """Payload of a per-user document point (the JSON travels as a string)."""
    return {"user": user, "name": name, "doc": json.dumps(doc), "ts": time.time()}


def doc_from_payloads(payloads: Iterable[dict[str, Any] | None], user: str,
                      name: str) -> dict[str, Any] | None:
    """The document among retrieved payloads, only if it is this user's and this name's."""
    for payload in payloads:
        p = payload or {}
        if p.get("user") == user and p.get("name") == name:
            doc: dict[str, Any] = json.loads(p["doc"])
            return doc
    return None
