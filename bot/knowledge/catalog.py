"""Documents and versions of one scope, kept durably as the vector store's JSON documents
(owner ``knowledge:SCOPE``), so losing Redis loses nothing.

- ``catalog``: one document per scope, every current document's record (``DocRecord``) and
  what was removed when. Writing it is the atomic version switch: a chunk is current only
  when its (document, version) is the catalog's, so chunks written before a failed switch
  are never found, and old chunks are invisible from the switch on.
- ``history:DOC``: per document, every version (hash, when, by whom, chunks added / removed
  / kept, the sections that changed) and the current chunks' hashes and first-seen times.

Knowledge drift of a scope since a date: chunks new or changed since then, plus chunks
removed since then (net of what replaced them), over current chunks plus those removed.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from bot.knowledge.chunking import Chunk
from bot.protocols import VectorStore

_NS = uuid.UUID("0c8e2c52-1f0e-4a53-8d57-6b6e6f776c65")
SCOPES_OWNER = "knowledge:*"
MAX_HISTORY = 200  # versions kept per document
MAX_SECTIONS = 12  # changed sections named per version


def owner(scope: str) -> str:
    """The store's document owner of a scope (no user key has the platform 'knowledge')."""
    return f"knowledge:{scope}"


def doc_id(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()[:20]


def chunk_id(scope: str, doc: str, version: int, position: int) -> str:
    """Deterministic, so a retried write overwrites and old versions can be deleted by id."""
    return uuid.uuid5(_NS, f"{scope}\x00{doc}\x00{version}\x00{position}").hex


@dataclass
class DocRecord:
    """A current document of a scope."""

    id: str
    source: str  # file name, or path relative to the directory it was added from
    title: str
    kind: str
    version: int
    hash: str  # sha256 of the file's bytes
    chunks: int
    bytes: int
    updated: float
    by: str
    origin: str = ""  # directory it was added from ("" = a single file or an upload)
    born: list[list[float]] = field(default_factory=list)  # [[first seen ts, chunks], ...]
    stale: list[list[int]] = field(default_factory=list)  # [[version, chunks]] to delete
    recent: list[dict[str, Any]] = field(default_factory=list)  # last versions' history

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DocRecord:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


@dataclass
class Catalog:
    scope: str
    docs: dict[str, DocRecord] = field(default_factory=dict)
    removed: list[list[float]] = field(default_factory=list)  # [[ts, chunks]]
    gone: dict[str, int] = field(default_factory=dict)  # removed doc -> its last version

    def last_version(self, doc: str) -> int:
        """The version a removed document had (numbering goes on if it comes back)."""
        return self.gone.get(doc, 0)

    def current(self, doc: str, version: int) -> bool:
        rec = self.docs.get(doc)
        return rec is not None and rec.version == version

    def by_source(self, source: str) -> DocRecord | None:
        return self.docs.get(doc_id(source))

    def note_removed(self, n: int, ts: float) -> None:
        if n > 0:
            self.removed.append([ts, float(n)])
            del self.removed[:-2000]  # the oldest removals fall out of the drift figure

    def drift(self, since: float) -> float:
        """Share of chunks changed since ``since`` (0.0 when the scope is empty)."""
        total = sum(r.chunks for r in self.docs.values())
        new = sum(n for r in self.docs.values() for ts, n in r.born if ts >= since)
        gone = sum(n for ts, n in self.removed if ts >= since)
        return (new + gone) / (total + gone) if total + gone else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"scope": self.scope, "docs": {k: asdict(v) for k, v in self.docs.items()},
                "removed": self.removed, "gone": self.gone}

    @classmethod
    def from_dict(cls, scope: str, d: dict[str, Any] | None) -> Catalog:
        if not d:
            return cls(scope)
        docs = {k: DocRecord.from_dict(v) for k, v in (d.get("docs") or {}).items()}
        return cls(scope, docs, [list(x) for x in d.get("removed") or []],
                   {str(k): int(v) for k, v in (d.get("gone") or {}).items()})


@dataclass
class Change:
    """What a new version changed against the previous one."""

    added: int
    removed: int
    kept: int
    sections: list[str]
    born: list[float]  # first-seen time of each new chunk, by position


def diff(old_hashes: list[str], old_born: list[float], new: list[Chunk], now: float) -> Change:
    """Chunks added/removed/kept by content (a moved chunk is kept, with its first-seen time)."""
    seen: dict[str, list[float]] = {}
    for h, b in zip(old_hashes, old_born, strict=False):
        seen.setdefault(h, []).append(b)
    born, added, sections = [], 0, []
    for c in new:
        if seen.get(c.hash):
            born.append(seen[c.hash].pop(0))
        else:
            born.append(now)
            added += 1
            if c.section not in sections:
                sections.append(c.section)
    removed = sum(len(v) for v in seen.values())
    return Change(added, removed, len(new) - added, sections[:MAX_SECTIONS], born)


def born_summary(born: list[float]) -> list[list[float]]:
    """[[first seen, chunks], ...]: a few entries per document, whatever its size."""
    out: dict[float, int] = {}
    for b in born:
        out[b] = out.get(b, 0) + 1
    return [[ts, float(n)] for ts, n in sorted(out.items())]


class CatalogStore:
    """Reads and writes a scope's catalog and documents' histories in the vector store."""

    def __init__(self, store: VectorStore) -> None:
        self.store = store

    async def load(self, scope: str) -> Catalog:
        return Catalog.from_dict(scope, await self.store.get_doc(owner(scope), "catalog"))

    async def save(self, catalog: Catalog) -> None:
        await self.store.put_doc(owner(catalog.scope), "catalog", catalog.to_dict())

    async def history(self, scope: str, doc: str) -> dict[str, Any]:
        return await self.store.get_doc(owner(scope), f"history:{doc}") or {"versions": []}

    async def append_history(self, scope: str, doc: str, source: str,
                             entries: list[dict[str, Any]]) -> None:
        history = await self.history(scope, doc)
        history["source"] = source
        history["versions"] = [*history.get("versions", []), *entries][-MAX_HISTORY:]
        await self.store.put_doc(owner(scope), f"history:{doc}", history)

    async def hashes(self, scope: str, doc: str) -> dict[str, Any]:
        """Chunk hashes and first-seen times by version (the current one and maybe a newer
        one written before a failed switch)."""
        return await self.store.get_doc(owner(scope), f"hashes:{doc}") or {}

    async def save_hashes(self, scope: str, doc: str, version: int, old: DocRecord | None,
                          hashes: list[str], born: list[float]) -> None:
        known = await self.hashes(scope, doc)
        keep = {k: v for k, v in known.items() if old is not None and k == str(old.version)}
        keep[str(version)] = {"hashes": hashes, "born": born}
        await self.store.put_doc(owner(scope), f"hashes:{doc}", keep)

    async def scopes(self) -> list[str]:
        doc = await self.store.get_doc(SCOPES_OWNER, "scopes") or {}
        return sorted(doc.get("scopes") or [])

    async def add_scope(self, scope: str) -> None:
        """Remember a scope (for drift metrics); the caller holds the ``*`` lock."""
        known = await self.scopes()
        if scope not in known:
            await self.store.put_doc(SCOPES_OWNER, "scopes", {"scopes": [*known, scope],
                                                              "ts": time.time()})
