"""``VectorStore`` over a Qdrant server through ``qdrant-client`` (``QDRANT_URL``, production).

Same behaviour and point layout as the embedded store (``bot.stores.qdrant_edge``): one
collection per kind, ``{prefix}_recall`` / ``{prefix}_archival`` / ``{prefix}_knowledge``
(document chunks, the scope as tenant key; named vectors ``dense``
cosine + ``bm25`` sparse with IDF) and ``{prefix}_docs``; multitenant by payload ``user``
with a tenant keyword index, every request filtered by user. Multitenancy indexing as
Qdrant recommends: no global HNSW graph (``m=0``), per-tenant graphs (``payload_m=16``).

The constructor takes ``url`` (+ ``api_key``) for a server, or ``location=":memory:"`` /
``path=`` for qdrant-client's local mode: tests use that to exercise this code path without
a server (local mode is far too slow to serve real traffic). qdrant-client errors become
``StoreError`` here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

from qdrant_client import AsyncQdrantClient, models

from bot.errors import DimensionMismatch, StoreError
from bot.protocols import Collection, Hit, MemoryItem, SearchMode
from bot.stores.layout import (
    COLLECTIONS,
    DENSE,
    RRF_K,
    RRF_WEIGHTS,
    SPARSE,
    VIS_FIELD,
    dim_mismatch_message,
    doc_from_payloads,
    doc_payload,
    doc_point_id,
    index_text,
    item_payload,
    payload_item,
    point_id,
    prefetch_limit,
)
from bot.stores.sparse import SparseEncoder

T = TypeVar("T")


class ServerVectorStore:
    """Recall/archival items and per-user docs in Qdrant collections named ``{prefix}_*``."""

    def __init__(self, url: str | None = None, *, api_key: str | None = None,
                 prefix: str = "membot", location: str | None = None, path: str | None = None,
                 timeout_s: int = 10, client: AsyncQdrantClient | None = None) -> None:
        if client is None:
            if url is None and location is None and path is None:
                raise ValueError("ServerVectorStore needs url, location or path")
            if url is not None:
                client = AsyncQdrantClient(url=url, api_key=api_key, timeout=timeout_s,
                                           check_compatibility=False)
            else:
                client = AsyncQdrantClient(location=location, path=path, timeout=timeout_s)
        self._client = client
        self.prefix = prefix
        self._sparse = SparseEncoder()

    def _name(self, kind: str) -> str:
        return f"{self.prefix}_{kind}"

    # --- lifecycle ------------------------------------------------------------------------------
    async def start(self, dim: int) -> None:
        for kind in COLLECTIONS:
            await self._ensure_collection(self._name(kind), dim)
        docs = self._name("docs")
        if not await self._call("start", self._client.collection_exists(docs)):
            await self._call("start", self._client.create_collection(docs, vectors_config={}))
        await self._index(docs, ts=False)

    async def _ensure_collection(self, name: str, dim: int) -> None:
        if not await self._call("start", self._client.collection_exists(name)):
            try:
                await self._client.create_collection(
                    name,
                    vectors_config={DENSE: models.VectorParams(size=dim, distance=models.Distance.COSINE)},
                    sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
                    hnsw_config=models.HnswConfigDiff(m=0, payload_m=16))
            except Exception as exc:  # another replica may have created it meanwhile
                if not await self._call("start", self._client.collection_exists(name)):
                    raise StoreError(f"cannot create qdrant collection {name}: {exc}") from exc
        info = await self._call("start", self._client.get_collection(name))
        vectors = info.config.params.vectors
        stored = vectors.get(DENSE) if isinstance(vectors, dict) else None
        if stored is None:
            raise StoreError(f"collection {name} has no {DENSE!r} vector: not a membot collection")
        if stored.size != dim:
            raise DimensionMismatch(dim_mismatch_message(stored.size, dim, "QDRANT_COLLECTION_PREFIX"))
        await self._index(name, ts=True)

    async def _index(self, name: str, *, ts: bool) -> None:
        await self._call("index", self._client.create_payload_index(
            name, "user", field_schema=models.KeywordIndexParams(
                type=models.KeywordIndexType.KEYWORD, is_tenant=True)))
        if ts:
            await self._call("index", self._client.create_payload_index(
                name, "ts", field_schema=models.PayloadSchemaType.FLOAT))
            await self._call("index", self._client.create_payload_index(
                name, VIS_FIELD, field_schema=models.PayloadSchemaType.KEYWORD))

    async def close(self) -> None:
        await self._call("close", self._client.close())

    # --- writes ---------------------------------------------------------------------------------
    async def upsert(self, collection: Collection, items: Sequence[MemoryItem],
                     vectors: Sequence[Sequence[float]]) -> None:
        if len(items) != len(vectors):
            raise StoreError(f"upsert got {len(items)} items but {len(vectors)} vectors")
        if not items:
            return
        points = []
        for item, vec in zip(items, vectors, strict=True):
            idx, val = self._sparse.document(index_text(item))
            named: dict[str, Any] = {SPARSE: models.SparseVector(indices=idx, values=val)}
            if len(vec):  # an empty vector: stored without a dense vector (see VectorStore)
                named[DENSE] = list(vec)
            points.append(models.PointStruct(id=str(point_id(item.id)), vector=named,
                                             payload=item_payload(item)))
        await self._call("write", self._client.upsert(self._name(collection), points, wait=True))

    async def delete(self, collection: Collection, user: str,
                     ids: Sequence[str] | None = None) -> int:
        if ids is not None and not ids:
            return 0
        flt = _filter(user, ids=ids)
        name = self._name(collection)
        n = (await self._call("delete", self._client.count(name, count_filter=flt, exact=True))).count
        if n:
            await self._call("delete", self._client.delete(
                name, models.FilterSelector(filter=flt), wait=True))
        return int(n)

    async def set_meta(self, collection: Collection, user: str, metas: dict[str, dict[str, Any]]) -> None:
        for item_id, meta in metas.items():  # the user filter: another user's id changes nothing
            await self._call("set_meta", self._client.set_payload(
                self._name(collection), {"meta": meta},
                points=models.FilterSelector(filter=_filter(user, ids=[item_id])), wait=True))

    # --- reads ----------------------------------------------------------------------------------
    async def search(self, collection: Collection, user: str, *, text: str,
                     vector: Sequence[float] | None, limit: int, offset: int = 0,
                     since: float | None = None, until: float | None = None,
                     mode: SearchMode = "hybrid", weights: Sequence[float] | None = None,
                     vis: Sequence[str] | None = None) -> list[Hit]:
        if limit <= 0:
            return []
        flt = _filter(user, since, until, vis=vis)
        signals: list[models.Prefetch] = []
        k = prefetch_limit(limit, offset)
        if mode in ("hybrid", "dense") and vector is not None:
            signals.append(models.Prefetch(query=list(vector), using=DENSE, filter=flt, limit=k))
        if mode in ("hybrid", "sparse"):
            idx, val = self._sparse.query(text)
            if idx:
                sv = models.SparseVector(indices=idx, values=val)
                signals.append(models.Prefetch(query=sv, using=SPARSE, filter=flt, limit=k))
        if not signals:
            return []
        name = self._name(collection)
        if len(signals) == 1:
            one = signals[0]
            call = self._client.query_points(name, query=one.query, using=one.using,
                                             query_filter=flt, limit=limit, offset=offset)
        else:
            call = self._client.query_points(
                name, prefetch=signals, query=models.RrfQuery(rrf=models.Rrf(k=RRF_K, weights=list(weights or RRF_WEIGHTS))),
                query_filter=flt, limit=limit, offset=offset)
        res = await self._call("search", call)
        return [Hit(payload_item(p.payload or {}), float(p.score)) for p in res.points]

    async def by_time(self, collection: Collection, user: str, *, since: float | None = None,
                      until: float | None = None, limit: int = 50, offset: int = 0,
                      newest_first: bool = False,
                      vis: Sequence[str] | None = None) -> list[MemoryItem]:
        if limit <= 0:
            return []
        direction = models.Direction.DESC if newest_first else models.Direction.ASC
        query = models.OrderByQuery(order_by=models.OrderBy(key="ts", direction=direction))
        res = await self._call("by_time", self._client.query_points(
            self._name(collection), query=query, query_filter=_filter(user, since, until, vis=vis),
            limit=limit, offset=offset))
        return [payload_item(p.payload or {}) for p in res.points]

    async def get(self, collection: Collection, user: str, ids: Sequence[str]) -> list[MemoryItem]:
        if not ids:
            return []
        records = await self._call("get", self._client.retrieve(
            self._name(collection), [str(point_id(i)) for i in ids], with_payload=True))
        found = {str(r.id): r.payload or {} for r in records}
        out = []
        for i in ids:
            payload = found.get(str(point_id(i)))
            if payload is not None and payload.get("user") == user:
                out.append(payload_item(payload))
        return out

    async def find(self, collection: Collection, ids: Sequence[str]) -> list[MemoryItem]:
        if not ids:
            return []
        records = await self._call("find", self._client.retrieve(
            self._name(collection), [str(point_id(i)) for i in ids], with_payload=True))
        return [payload_item(r.payload) for r in records if r.payload]

    async def count(self, collection: Collection, user: str) -> int:
        res = await self._call("count", self._client.count(
            self._name(collection), count_filter=_filter(user), exact=True))
        return int(res.count)

    # --- per-user documents ---------------------------------------------------------------------
    async def put_doc(self, user: str, name: str, doc: dict[str, Any]) -> None:
        point = models.PointStruct(id=str(doc_point_id(user, name)), vector={},
                                   payload=doc_payload(user, name, doc))
        await self._call("put_doc", self._client.upsert(self._name("docs"), [point], wait=True))

    async def get_doc(self, user: str, name: str) -> dict[str, Any] | None:
        records = await self._call("get_doc", self._client.retrieve(
            self._name("docs"), [str(doc_point_id(user, name))], with_payload=True))
        return doc_from_payloads((r.payload for r in records), user, name)

    async def delete_docs(self, user: str) -> None:
        await self._call("delete_docs", self._client.delete(
            self._name("docs"), models.FilterSelector(filter=_filter(user)), wait=True))

    # --- plumbing -------------------------------------------------------------------------------
    async def _call(self, what: str, aw: Awaitable[T]) -> T:
        """Await a client call, translating every client/transport error into ``StoreError``."""
        try:
            return await aw
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(f"qdrant {what} failed: {type(exc).__name__}: {exc}") from exc


def _filter(user: str, since: float | None = None, until: float | None = None,
            ids: Sequence[str] | None = None, vis: Sequence[str] | None = None) -> models.Filter:
    must: list[models.Condition] = [
        models.FieldCondition(key="user", match=models.MatchValue(value=user))]
    if vis is not None:  # an empty list matches nothing
        must.append(models.FieldCondition(key=VIS_FIELD, match=models.MatchAny(any=list(vis))))
    if since is not None or until is not None:
        must.append(models.FieldCondition(key="ts", range=models.Range(gte=since, lt=until)))
    if ids is not None:
        must.append(models.HasIdCondition(has_id=[str(point_id(i)) for i in ids]))
    return models.Filter(must=must)
