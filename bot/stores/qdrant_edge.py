"""``VectorStore`` over the embedded Qdrant engine (``qdrant-edge-py``): no server needed.

Layout under ``path``: one shard directory per collection, ``{prefix}_recall``,
``{prefix}_archival`` and ``{prefix}_knowledge`` (named vectors ``dense`` cosine + ``bm25``
sparse with IDF; payload
``id user text ts role kind meta``; tenant index on ``user``, float index on ``ts``), and
``{prefix}_docs`` for per-user JSON documents. Every read is filtered by user. BM25 indexes
``meta["index"]`` when the writer gives one (bot.memory.longterm: speaker + the turn before), else
the text; that index text is not kept in the payload.

Index choice (multitenancy): no global HNSW graph (``m=0``), per-tenant graphs
(``payload_m=16``) built only for users above ``full_scan_threshold``; a typical user's
few thousand points are scored exactly through the tenant index, which is faster than any
graph at that size and needs no indexing CPU. See ``edge_config``.

The engine is synchronous Rust and thread-safe (concurrent queries and writes checked):
calls run on a small dedicated thread pool. Writes go to the engine's WAL, which makes
them durable across a process crash (tested); segments are flushed in the background at
most every ``FLUSH_INTERVAL_S`` after writes (a flush briefly stalls queries), and on
``close()``. Engine errors (plain ``Exception``) become ``StoreError`` here.

Optimization: the engine has no background optimizer, and ``EdgeShard.optimize()``
blocks the shard's queries (and writes) while it runs. Left alone, all points stay in one
appendable segment whose sparse search slows with its size (hybrid p99 30 ms at 2M
points, 4.6 ms once optimized). So the store runs ``optimize()`` itself, in the background
after every ``OPTIMIZE_EVERY`` points written to a collection (0 = never; ``optimize()``
is public for maintenance windows), with optimizer limits that keep a run incremental:
the appendable segment becomes an indexed one and merges stop at ``MAX_SEGMENT_KB``.
Measured at 2M points: 0.5-5 s per run, during which that collection's searches wait;
at chat write rates that is one stall every several hours. ``start()`` optimizes too (a
no-op when there is nothing to do).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import qdrant_edge as qe

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
log = logging.getLogger(__name__)
FLUSH_INTERVAL_S = 60.0  # a flush stalls concurrent queries (~30 ms at 200k points); the WAL
# already makes every acknowledged write survive a crash, flushing only bounds its replay
OPTIMIZE_EVERY = 50_000  # points written to a collection between background optimizations
FULL_SCAN_THRESHOLD_KB = 10_000  # ~6.5k 384-dim vectors: users below it are scanned exactly
INDEXING_THRESHOLD_KB = 20_000  # appendable segments above ~13k points get indexed
MAX_SEGMENT_KB = 300_000  # ~200k points: bounds what one merge rewrites (and its stall)
SEGMENTS = 16  # merge the smallest segments only beyond this many


def edge_config(dim: int) -> qe.EdgeConfig:
    hnsw = qe.HnswIndexConfig(m=0, ef_construct=100, full_scan_threshold=FULL_SCAN_THRESHOLD_KB,
                              max_indexing_threads=1, payload_m=16)
    optimizers = qe.EdgeOptimizersConfig(indexing_threshold=INDEXING_THRESHOLD_KB,
                                         max_segment_size=MAX_SEGMENT_KB,
                                         default_segment_number=SEGMENTS)
    return qe.EdgeConfig(
        vectors={DENSE: qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine)},
        sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
        hnsw_config=hnsw, optimizers=optimizers)


def _docs_config() -> qe.EdgeConfig:
    return qe.EdgeConfig(sparse_vectors={"none": qe.EdgeSparseVectorParams()})


class EdgeVectorStore:
    """Recall/archival items and per-user docs in embedded Qdrant shards under ``path``."""

    def __init__(self, path: str | Path, prefix: str = "membot", *, threads: int = 4,
                 optimize_every: int = OPTIMIZE_EVERY) -> None:
        self.path = Path(path).expanduser()
        self.prefix = prefix
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="qdrant-edge")
        self._shards: dict[str, qe.EdgeShard] = {}
        self._sparse = SparseEncoder()
        self._last_flush = time.monotonic()
        self._dirty: set[str] = set()
        self._flush_queued = False
        self._optimize_every = optimize_every
        self._written: dict[str, int] = {}
        self._optimizing = False
        self._lock = threading.Lock()
        self._closed = False

    # --- lifecycle ------------------------------------------------------------------------------
    async def start(self, dim: int) -> None:
        await self._run(self._start, dim)

    def _start(self, dim: int) -> None:
        for name in COLLECTIONS:  # check every collection before opening (locking) any
            stored = _stored_dim(self._dir(name))
            if stored is not None and stored != dim:
                raise DimensionMismatch(dim_mismatch_message(stored, dim, "QDRANT_PATH"))
        if self._shards:
            return  # already started
        self.path.mkdir(parents=True, exist_ok=True)
        try:
            for name in COLLECTIONS:
                self._shards[name] = _open_shard(self._dir(name), edge_config(dim))
                _ensure_indexes(self._shards[name])
                _guard("optimize", self._shards[name].optimize)
            self._shards["docs"] = _open_shard(self._dir("docs"), _docs_config())
            _ensure_indexes(self._shards["docs"], ts=False)
        except BaseException:
            self._close()
            raise

    async def close(self) -> None:
        """Let in-flight calls finish, then flush and close the shards."""
        if self._closed:
            return
        self._closed = True
        await asyncio.to_thread(self._pool.shutdown, True)
        await asyncio.to_thread(self._close)

    def _close(self) -> None:
        with self._lock:
            shards, self._shards = self._shards, {}
        errors: list[StoreError] = []
        for shard in shards.values():
            for step in (shard.flush, shard.close):
                try:
                    _guard("close", step)
                except StoreError as exc:
                    errors.append(exc)
        if errors:
            raise errors[0]

    # --- writes ---------------------------------------------------------------------------------
    async def upsert(self, collection: Collection, items: Sequence[MemoryItem],
                     vectors: Sequence[Sequence[float]]) -> None:
        if len(items) != len(vectors):
            raise StoreError(f"upsert got {len(items)} items but {len(vectors)} vectors")
        if items:
            await self._run(self._upsert, collection, items, vectors)

    def _upsert(self, collection: str, items: Sequence[MemoryItem],
                vectors: Sequence[Sequence[float]]) -> None:
        points = []
        for item, vec in zip(items, vectors, strict=True):
            idx, val = self._sparse.document(index_text(item))
            named: dict[str, Any] = {SPARSE: qe.SparseVector(idx, val)}
            if len(vec):  # an empty vector: stored without a dense vector (see VectorStore)
                named[DENSE] = list(vec)
            points.append(qe.Point(point_id(item.id), named, item_payload(item)))
        self._update(collection, qe.UpdateOperation.upsert_points(points), len(points))

    async def delete(self, collection: Collection, user: str,
                     ids: Sequence[str] | None = None) -> int:
        return await self._run(self._delete, collection, user, ids)

    def _delete(self, collection: str, user: str, ids: Sequence[str] | None) -> int:
        flt = _filter(user)
        if ids is not None:
            if not ids:
                return 0
            flt = _filter(user, ids=ids)
        n = _guard("delete", self._shard(collection).count, qe.CountRequest(filter=flt, exact=True))
        if n:
            self._update(collection, qe.UpdateOperation.delete_points_by_filter(flt))
        return n

    async def set_meta(self, collection: Collection, user: str, metas: dict[str, dict[str, Any]]) -> None:
        if metas:
            await self._run(self._set_meta, collection, user, metas)

    def _set_meta(self, collection: str, user: str, metas: dict[str, dict[str, Any]]) -> None:
        for item_id, meta in metas.items():  # the user filter: another user's id changes nothing
            op = qe.UpdateOperation.set_payload_by_filter(_filter(user, ids=[item_id]), {"meta": meta})
            self._update(collection, op)

    def _update(self, name: str, op: qe.UpdateOperation, points: int = 0) -> None:
        _guard("write", self._shard(name).update, op)
        with self._lock:
            self._dirty.add(name)
            flush = not self._flush_queued and (
                time.monotonic() - self._last_flush >= FLUSH_INTERVAL_S)
            self._flush_queued = self._flush_queued or flush
            self._written[name] = self._written.get(name, 0) + points
            optimize = (not self._optimizing and self._optimize_every > 0
                        and self._written[name] >= self._optimize_every)
            if optimize:
                self._optimizing, self._written[name] = True, 0
        if flush:
            self._submit(self._flush)
        if optimize:
            self._submit(self._optimize, name)

    def _submit(self, fn: Callable[..., object], *args: Any) -> None:
        try:
            self._pool.submit(fn, *args)
        except RuntimeError:  # closing: close() flushes, the next start() optimizes
            pass

    def _flush(self) -> None:
        with self._lock:
            dirty, self._dirty = self._dirty, set()
            self._last_flush, self._flush_queued = time.monotonic(), False
            shards = [self._shards[n] for n in dirty if n in self._shards]
        for shard in shards:
            try:
                _guard("flush", shard.flush)
            except StoreError as exc:  # background task: report; the WAL still has the data
                log.warning("periodic flush failed: %s", exc)

    def _optimize(self, name: str) -> None:
        started = time.monotonic()
        try:
            if name in self._shards:
                _guard("optimize", self._shards[name].optimize)
            log.info("optimized %s in %.2f s", name, time.monotonic() - started)
        except StoreError as exc:
            log.warning("background optimize failed: %s", exc)
        finally:
            self._optimizing = False

    async def optimize(self) -> None:
        """Optimize every collection now (blocks searches of that collection while it runs)."""
        for name in COLLECTIONS:
            await self._run(lambda n=name: _guard("optimize", self._shard(n).optimize))

    # --- reads ----------------------------------------------------------------------------------
    async def search(self, collection: Collection, user: str, *, text: str,
                     vector: Sequence[float] | None, limit: int, offset: int = 0,
                     since: float | None = None, until: float | None = None,
                     mode: SearchMode = "hybrid", weights: Sequence[float] | None = None,
                     vis: Sequence[str] | None = None) -> list[Hit]:
        return await self._run(self._search, collection, user, text, vector, limit, offset,
                               since, until, mode, weights, vis)

    def _search(self, collection: str, user: str, text: str, vector: Sequence[float] | None,
                limit: int, offset: int, since: float | None, until: float | None,
                mode: SearchMode, weights: Sequence[float] | None = None,
                vis: Sequence[str] | None = None) -> list[Hit]:
        if limit <= 0:
            return []
        flt = _filter(user, since, until, vis=vis)
        signals: list[qe.Query] = []
        if mode in ("hybrid", "dense") and vector is not None:
            signals.append(qe.Query.Nearest(list(vector), using=DENSE))
        if mode in ("hybrid", "sparse"):
            idx, val = self._sparse.query(text)
            if idx:
                signals.append(qe.Query.Nearest(qe.SparseVector(idx, val), using=SPARSE))
        if not signals:
            return []
        if len(signals) == 1:
            req = qe.QueryRequest(limit=limit, offset=offset, query=signals[0], filter=flt,
                                  with_payload=True)
        else:
            k = prefetch_limit(limit, offset)
            req = qe.QueryRequest(
                limit=limit, offset=offset, filter=flt,
                query=qe.Fusion.Rrf(k=RRF_K, weights=list(weights or RRF_WEIGHTS)),  # type: ignore[arg-type]
                prefetches=[qe.Prefetch(limit=k, query=s, filter=flt) for s in signals],
                with_payload=True)
        points = _guard("search", self._shard(collection).query, req)
        return [Hit(payload_item(p.payload or {}), float(p.score)) for p in points]

    async def by_time(self, collection: Collection, user: str, *, since: float | None = None,
                      until: float | None = None, limit: int = 50, offset: int = 0,
                      newest_first: bool = False,
                      vis: Sequence[str] | None = None) -> list[MemoryItem]:
        if limit <= 0:
            return []
        direction = qe.Direction.Desc if newest_first else qe.Direction.Asc
        req = qe.QueryRequest(limit=limit, offset=offset, query=qe.OrderBy("ts", direction=direction),
                              filter=_filter(user, since, until, vis=vis), with_payload=True)
        points = await self._run(lambda: _guard("by_time", self._shard(collection).query, req))
        return [payload_item(p.payload or {}) for p in points]

    async def get(self, collection: Collection, user: str, ids: Sequence[str]) -> list[MemoryItem]:
        if not ids:
            return []
        records = await self._run(self._retrieve, collection, [point_id(i) for i in ids])
        found = {r.id: r.payload or {} for r in records}
        out = []
        for i in ids:
            payload = found.get(point_id(i))
            if payload is not None and payload.get("user") == user:
                out.append(payload_item(payload))
        return out

    async def find(self, collection: Collection, ids: Sequence[str]) -> list[MemoryItem]:
        if not ids:
            return []
        records = await self._run(self._retrieve, collection, [point_id(i) for i in ids])
        return [payload_item(r.payload) for r in records if r.payload]

    def _retrieve(self, name: str, ids: list[Any]) -> list[qe.Record]:
        return _guard("get", self._shard(name).retrieve, ids, True, False)

    async def count(self, collection: Collection, user: str) -> int:
        req = qe.CountRequest(filter=_filter(user), exact=True)
        return await self._run(lambda: _guard("count", self._shard(collection).count, req))

    # --- per-user documents ---------------------------------------------------------------------
    async def put_doc(self, user: str, name: str, doc: dict[str, Any]) -> None:
        point = qe.Point(doc_point_id(user, name), {}, doc_payload(user, name, doc))
        await self._run(self._update, "docs", qe.UpdateOperation.upsert_points([point]))

    async def get_doc(self, user: str, name: str) -> dict[str, Any] | None:
        records = await self._run(self._retrieve, "docs", [doc_point_id(user, name)])
        return doc_from_payloads((r.payload for r in records), user, name)

    async def delete_docs(self, user: str) -> None:
        op = qe.UpdateOperation.delete_points_by_filter(_filter(user))
        await self._run(self._update, "docs", op)

    # --- plumbing -------------------------------------------------------------------------------
    def _dir(self, name: str) -> Path:
        return self.path / f"{self.prefix}_{name}"

    def _shard(self, name: str) -> qe.EdgeShard:
        shard = self._shards.get(name)
        if shard is None:
            raise StoreError("the vector store is closed" if self._closed
                             else "the vector store is not started: call start(dim) first")
        return shard

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise StoreError("the vector store is closed")
        try:
            fut = asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
        except RuntimeError as exc:  # the pool refuses new work once close() began
            raise StoreError("the vector store is closed") from exc
        return await fut


def _filter(user: str, since: float | None = None, until: float | None = None,
            ids: Sequence[str] | None = None, vis: Sequence[str] | None = None) -> qe.Filter:
    must: list[Any] = [qe.FieldCondition("user", match=qe.MatchValue(user))]
    if vis is not None:  # an empty list matches nothing
        must.append(qe.FieldCondition(VIS_FIELD, match=qe.MatchAny(list(vis))))
    if since is not None or until is not None:
        must.append(qe.FieldCondition("ts", range=qe.RangeFloat(gte=since, lt=until)))
    if ids is not None:
        must.append(qe.HasIdCondition({point_id(i) for i in ids}))
    return qe.Filter(must=must)


def _guard(what: str, fn: Callable[..., T], *args: Any) -> T:
    """Call the engine, translating its plain ``Exception``s into ``StoreError``."""
    try:
        return fn(*args)
    except StoreError:
        raise
    except Exception as exc:
        raise StoreError(f"qdrant-edge {what} failed: {exc}") from exc


def _stored_dim(shard_dir: Path) -> int | None:
    """Dense size recorded in an existing shard's ``edge_config.json`` (None when new)."""
    try:
        config = json.loads((shard_dir / "edge_config.json").read_text())
        return int(config["vectors"][DENSE]["size"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StoreError(f"unreadable shard config in {shard_dir}: {exc}") from exc


def _open_shard(shard_dir: Path, config: qe.EdgeConfig) -> qe.EdgeShard:
    try:
        if (shard_dir / "edge_config.json").exists():
            return qe.EdgeShard.load(str(shard_dir), config)
        return qe.EdgeShard.create(str(shard_dir), config)
    except Exception as exc:
        if "WouldBlock" in str(exc):
            raise StoreError(
                f"{shard_dir} is open in another process: the embedded engine allows one process "
                "per QDRANT_PATH (use QDRANT_URL for several replicas)") from exc
        raise StoreError(f"cannot open qdrant-edge shard {shard_dir}: {exc}") from exc


def _ensure_indexes(shard: qe.EdgeShard, *, ts: bool = True) -> None:
    schema = _guard("index", shard.info).payload_schema
    if "user" not in schema:
        _guard("index", shard.update, qe.UpdateOperation.create_field_index(
            "user", qe.KeywordIndexParams(is_tenant=True)))
    if ts and "ts" not in schema:
        _guard("index", shard.update, qe.UpdateOperation.create_field_index(
            "ts", qe.FloatIndexParams(enable_hnsw=False)))
    if ts and VIS_FIELD not in schema:
        _guard("index", shard.update, qe.UpdateOperation.create_field_index(
            VIS_FIELD, qe.KeywordIndexParams()))
