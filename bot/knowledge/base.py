"""``KnowledgeBase``: ingestion with versions, removal and search of scoped documents.

Writing a batch of documents to a scope, under the scope's lock:
1. every file is read, checked and chunked first; a bad file is reported and skipped,
   an unchanged one (same content hash) is skipped;
2. the new chunks are embedded and written under new ids (document, version, position);
3. the catalog is written: that one document write switches the versions (see
   bot.knowledge.catalog); a failure before it leaves the previous versions current, and
   the new chunks are never returned (search keeps current chunks only);
4. the old versions' chunks are deleted (a failure there leaves them invisible and listed
   as stale in the catalog, deleted by the next write to the scope).

Search runs over the place's scope and ``global`` only (bot.knowledge.scopes), each scope
a tenant of the store's ``knowledge`` collection, and drops chunks that are not current.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Literal, Protocol

from bot.errors import KnowledgeError
from bot.knowledge import readers
from bot.knowledge.catalog import (
    Catalog,
    CatalogStore,
    Change,
    DocRecord,
    born_summary,
    chunk_id,
    diff,
    doc_id,
)
from bot.knowledge.chunking import Chunk, chunks
from bot.knowledge.document import Parsed
from bot.knowledge.scopes import parse_scope
from bot.protocols import INDEX_KEY, Embedder, MemoryItem, SearchMode, VectorStore

log = logging.getLogger("membot.knowledge")
Status = Literal["added", "updated", "unchanged", "removed", "failed"]
Progress = Callable[[int, int], None]
RECENT_VERSIONS = 5  # versions kept in the catalog record (the full history is its own doc)
CATALOG_TTL_S = 2.0  # search reads a scope's catalog at most this often per process
DELETE_BATCH = 256
EMBED_BATCH = 16  # chunks per embedding call: long texts make the model's working memory
# grow with batch x length^2 (64 chunks of ~1,000 characters: ~3 GB RSS; 16: see bench)


class Locker(Protocol):
    """A lease lock by key (``bot.stores.redis_store.RedisStore`` is one)."""

    async def acquire(self, user: str, ttl_s: float) -> str | None: ...

    async def release(self, user: str, token: str) -> None: ...


@dataclass
class Prepared:
    """A read and chunked file, ready to be written."""

    source: str
    parsed: Parsed
    chunks: list[Chunk]
    hash: str
    size: int
    origin: str = ""

    @property
    def id(self) -> str:
        return doc_id(self.source)


@dataclass
class Outcome:
    source: str
    status: Status
    version: int = 0
    chunks: int = 0
    error: str = ""
    change: Change | None = None


@dataclass
class KnowledgeHit:
    scope: str
    source: str
    title: str
    section: str
    position: int
    version: int
    text: str
    score: float


@dataclass
class _Write:
    index: int  # in the batch
    prep: Prepared
    version: int
    change: Change
    old: DocRecord | None
    items: list[MemoryItem] = field(default_factory=list)


class KnowledgeBase:
    def __init__(self, store: VectorStore, embedder: Embedder, *, locker: Locker | None = None,
                 max_bytes: int = 20 * 1_048_576, chunk_chars: int = 1_000,
                 on_change: Callable[[str], Awaitable[None]] | None = None) -> None:
        self.store = store
        self.embedder = embedder
        self.catalogs = CatalogStore(store)
        self.locker = locker
        self.max_bytes = max_bytes
        self.chunk_chars = chunk_chars
        self.on_change = on_change
        self._local: dict[str, asyncio.Lock] = {}
        self._cache: dict[str, tuple[float, Catalog]] = {}

    # --- reading files ------------------------------------------------------------------------
    def prepare(self, name: str, data: bytes, *, source: str | None = None,
                origin: str = "") -> Prepared:
        """Read and chunk one file; ``KnowledgeError`` says why it is refused."""
        src = (source or name).strip()
        if not src or len(src) > 300:
            raise KnowledgeError("a document needs a name of 1-300 characters")
        parsed = readers.read(name, data, self.max_bytes)
        return Prepared(src, parsed, chunks(parsed, self.chunk_chars),
                        hashlib.sha256(data).hexdigest(), len(data), origin)

    # --- writing --------------------------------------------------------------------------------
    async def add(self, scope: str, name: str, data: bytes, *, actor: str,
                  source: str | None = None) -> Outcome:
        """Add or replace one document; raises ``KnowledgeError`` when the file is refused."""
        prep = self.prepare(name, data, source=source)
        return (await self.commit(scope, [prep], actor=actor))[0]

    async def commit(self, scope: str, todo: Sequence[Prepared], *, actor: str,
                     progress: Progress | None = None) -> list[Outcome]:
        """Write prepared documents (steps 2-4 of the module docstring); one outcome each."""
        scope = parse_scope(scope)
        async with self.locked(scope):
            catalog = await self.catalogs.load(scope)
            await self._collect_stale(catalog)
            now = time.time()
            writes: list[_Write] = []
            outcomes: dict[int, Outcome] = {}
            for n, prep in enumerate(todo):
                if any(w.prep.id == prep.id for w in writes) or any(
                        p.id == prep.id for p in todo[:n]):
                    outcomes[n] = Outcome(prep.source, "failed", error="another file in this "
                                          "batch has the same name; nothing written for it")
                    continue
                old = catalog.docs.get(prep.id)
                if old is not None and old.hash == prep.hash:
                    outcomes[n] = Outcome(prep.source, "unchanged", old.version, old.chunks)
                    continue
                version = max(old.version if old else 0, catalog.last_version(prep.id)) + 1
                hashes = await self.catalogs.hashes(scope, prep.id)
                prev = hashes.get(str(old.version)) if old else None
                change = diff(prev["hashes"] if prev else [], prev["born"] if prev else [],
                              prep.chunks, now)
                writes.append(_Write(n, prep, version, change, old))
            await self._write_chunks(scope, writes, progress)
            for w in writes:
                await self.catalogs.save_hashes(scope, w.prep.id, w.version, w.old,
                                                [c.hash for c in w.prep.chunks], w.change.born)
                self._switch(catalog, w, actor, now)
            if writes:
                await self.catalogs.save(catalog)  # the version switch
                self._cache.pop(scope, None)
                async with self.locked("*"):
                    await self.catalogs.add_scope(scope)
                await self._collect_stale(catalog)
                await self._archive(scope, writes, actor, now)
        for w in writes:
            out = outcomes[w.index] = Outcome(w.prep.source, "updated" if w.old else "added",
                                              w.version, len(w.prep.chunks), change=w.change)
            log.info("knowledge %s %s v%d in %s by %s", out.status, w.prep.source, w.version,
                     scope, actor)
        if writes:
            await self._changed(scope)
        return [outcomes[n] for n in range(len(todo))]

    async def _write_chunks(self, scope: str, writes: list[_Write],
                            progress: Progress | None) -> None:
        total, done = sum(len(w.prep.chunks) for w in writes), 0
        for w in writes:
            p = w.prep
            w.items = [MemoryItem(
                id=chunk_id(scope, p.id, w.version, c.position), user=scope, text=c.text,
                ts=time.time(), role="knowledge", kind="chunk",
                meta={"doc": p.id, "version": w.version, "source": p.source,
                      "title": p.parsed.title, "section": c.section, "position": c.position,
                      INDEX_KEY: c.index_text(p.parsed.title)}) for c in p.chunks]
            for start in range(0, len(w.items), EMBED_BATCH):
                batch = w.items[start:start + EMBED_BATCH]
                vectors = await self.embedder.embed([str(i.meta[INDEX_KEY]) for i in batch])
                await self.store.upsert("knowledge", batch, vectors)
                done += len(batch)
                if progress:
                    progress(done, total)
            # positions past the end left by an earlier attempt that failed before its switch
            await self._delete_from(scope, p.id, w.version, len(p.chunks))

    def _switch(self, catalog: Catalog, w: _Write, actor: str, now: float) -> None:
        p, old = w.prep, w.old
        stale = [*(old.stale if old else []), *([[old.version, old.chunks]] if old else [])]
        recent = [*(old.recent if old else []), _entry(w, actor, now)][-RECENT_VERSIONS:]
        catalog.docs[p.id] = DocRecord(
            id=p.id, source=p.source, title=p.parsed.title, kind=p.parsed.kind,
            version=w.version, hash=p.hash, chunks=len(p.chunks), bytes=p.size, updated=now,
            by=actor, origin=p.origin, born=born_summary(w.change.born), stale=stale,
            recent=recent)
        catalog.gone.pop(p.id, None)
        catalog.note_removed(max(0, w.change.removed - w.change.added), now)

    async def remove(self, scope: str, source: str, *, actor: str) -> Outcome:
        """Delete a document and its chunks (its history is kept)."""
        scope = parse_scope(scope)
        async with self.locked(scope):
            catalog = await self.catalogs.load(scope)
            rec = catalog.by_source(source.strip())
            if rec is None:
                raise KnowledgeError(f"no document '{source}' in {scope}; see `knowledge list`")
            del catalog.docs[rec.id]
            catalog.gone[rec.id] = rec.version
            catalog.note_removed(rec.chunks, time.time())
            await self.catalogs.save(catalog)  # from here the document is gone
            self._cache.pop(scope, None)
            for version, n in [*rec.stale, [rec.version, rec.chunks]]:
                await self._delete_range(scope, rec.id, version, 0, n)
            await self._delete_from(scope, rec.id, rec.version + 1, 0)
            await self.catalogs.append_history(scope, rec.id, rec.source, [{
                "version": rec.version, "ts": time.time(), "by": actor, "action": "removed",
                "chunks": rec.chunks}])
        log.info("knowledge removed %s from %s by %s", rec.source, scope, actor)
        await self._changed(scope)
        return Outcome(rec.source, "removed", rec.version, rec.chunks)

    async def _changed(self, scope: str) -> None:
        if self.on_change is not None:
            try:
                await self.on_change(scope)
            except Exception as exc:  # metrics only: the change itself is done
                log.warning("knowledge change hook failed: %s", exc)

    # --- old chunks -------------------------------------------------------------------------------
    async def _collect_stale(self, catalog: Catalog) -> None:
        """Delete old versions' chunks the catalog lists as stale, then clear the list."""
        dirty = False
        for rec in catalog.docs.values():
            for version, n in rec.stale:
                await self._delete_range(catalog.scope, rec.id, version, 0, n)
            dirty = dirty or bool(rec.stale)
            rec.stale = []
        if dirty:
            await self.catalogs.save(catalog)

    async def _delete_range(self, scope: str, doc: str, version: int, start: int, end: int) -> int:
        n = 0
        for lo in range(start, end, DELETE_BATCH):
            ids = [chunk_id(scope, doc, version, i) for i in range(lo, min(end, lo + DELETE_BATCH))]
            n += await self.store.delete("knowledge", scope, ids)
        return n

    async def _delete_from(self, scope: str, doc: str, version: int, start: int) -> None:
        """Delete a version's chunks from ``start`` on, batch by batch until none is found."""
        while await self._delete_range(scope, doc, version, start, start + DELETE_BATCH):
            start += DELETE_BATCH

    async def _archive(self, scope: str, writes: list[_Write], actor: str, now: float) -> None:
        """The full history document of each written document (after the switch; the catalog
        keeps the last versions too, so a failure here loses no recent entry)."""
        for w in writes:
            try:
                await self.catalogs.append_history(scope, w.prep.id, w.prep.source,
                                                   [_entry(w, actor, now)])
            except Exception as exc:  # the switch happened; the catalog has the entry
                log.warning("knowledge history of %s not archived: %s", w.prep.source, exc)

    # --- reading ----------------------------------------------------------------------------------
    async def catalog(self, scope: str) -> Catalog:
        return await self.catalogs.load(parse_scope(scope))

    async def show(self, scope: str, source: str) -> tuple[DocRecord, list[dict[str, object]]]:
        """A document's record and its whole version history (oldest first)."""
        catalog = await self.catalog(scope)
        rec = catalog.by_source(source.strip())
        if rec is None:
            raise KnowledgeError(f"no document '{source}' in {scope}; see `knowledge list`")
        history = await self.catalogs.history(catalog.scope, rec.id)
        merged = {(e["version"], e.get("action", "")): e for e in history.get("versions", [])}
        merged.update({(e["version"], e.get("action", "")): e for e in rec.recent})
        return rec, sorted(merged.values(), key=lambda e: (float(e["ts"]), int(e["version"])))

    async def scopes(self) -> list[str]:
        return await self.catalogs.scopes()

    async def _current(self, scope: str) -> Catalog:
        hit = self._cache.get(scope)
        if hit is not None and time.monotonic() - hit[0] < CATALOG_TTL_S:
            return hit[1]
        catalog = await self.catalogs.load(scope)
        self._cache[scope] = (time.monotonic(), catalog)
        return catalog

    async def search(self, scopes: Sequence[str], query: str, *, limit: int, offset: int = 0,
                     mode: SearchMode = "hybrid") -> list[KnowledgeHit]:
        """Best current chunks of these scopes only (merged by score)."""
        if not query.strip():
            raise KnowledgeError("query is empty")
        vector = None if mode == "sparse" else (await self.embedder.embed([query]))[0]
        depth = offset + limit
        found: list[KnowledgeHit] = []
        for scope in dict.fromkeys(scopes):
            catalog = await self._current(scope)
            if not catalog.docs:
                continue
            hits = await self.store.search("knowledge", scope, text=query, vector=vector,
                                           limit=depth * 2 + 8, mode=mode)
            for h in hits:
                m = h.item.meta
                if h.item.user == scope and catalog.current(str(m.get("doc")), int(m.get("version", -1))):
                    found.append(KnowledgeHit(scope, str(m.get("source", "")), str(m.get("title", "")),
                                              str(m.get("section", "")), int(m.get("position", 0)),
                                              int(m["version"]), h.item.text, h.score))
        found.sort(key=lambda k: -k.score)
        return found[offset:offset + limit]

    # --- locking ----------------------------------------------------------------------------------
    @asynccontextmanager
    async def locked(self, scope: str, wait_s: float = 120.0) -> AsyncIterator[None]:
        """One writer per scope: across processes through the locker, else in-process."""
        if self.locker is None:
            async with self._local.setdefault(scope, asyncio.Lock()):
                yield
            return
        key, deadline = f"knowledge:{scope}", time.monotonic() + wait_s
        while (token := await self.locker.acquire(key, 600.0)) is None:
            if time.monotonic() > deadline:
                raise KnowledgeError(f"{scope} is being updated by someone else; try again shortly")
            await asyncio.sleep(0.1)
        try:
            yield
        finally:
            await self.locker.release(key, token)


def _entry(w: _Write, actor: str, now: float) -> dict[str, object]:
    return {"version": w.version, "ts": now, "by": actor, "hash": w.prep.hash,
            "action": "updated" if w.old else "added", "chunks": len(w.prep.chunks),
            "added": w.change.added, "removed": w.change.removed, "kept": w.change.kept,
            "sections": w.change.sections}
