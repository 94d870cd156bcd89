"""Knowledge operations of ``membot knowledge ...`` as plain data, so that the CLI prints the
same whether it opened the stores itself or a running bot answered on its admin socket
(``bot.ops.control``). The work is done by ``bot.knowledge.base`` and ``bot.knowledge.ingest``.

Paths are read by the process that holds the stores: the CLI sends them absolute.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from bot.knowledge import ingest
from bot.knowledge.base import KnowledgeBase, Outcome
from bot.knowledge.render import citation
from bot.messages import stamp

Report = Callable[[dict[str, Any]], None]  # one outcome (see ``outcome``) as soon as it is known
Advance = Callable[[int, int], None]  # (files done, files total)


def outcome(o: Outcome) -> dict[str, Any]:
    """What the CLI shows of one file's fate."""
    return {"source": o.source, "status": o.status, "version": o.version, "chunks": o.chunks,
            "error": o.error}


class KnowledgeAdmin:
    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb

    async def add(self, scope: str, paths: list[str], actor: str = "cli",
                  report: Report | None = None, advance: Advance | None = None) -> list[dict[str, Any]]:
        """Add or replace files and directories (unchanged ones are skipped)."""
        refs = await asyncio.to_thread(ingest.collect, paths)
        if advance:
            advance(0, len(refs))
        done = await ingest.add_files(self.kb, scope, refs, actor=actor, advance=advance,
                                      report=(lambda o: report(outcome(o))) if report else None)
        return [outcome(o) for o in done]

    async def sync(self, scope: str, directory: str, actor: str = "cli",
                   report: Report | None = None, advance: Advance | None = None) -> list[dict[str, Any]]:
        """Make the scope match a directory: add new, replace changed, remove deleted."""
        done = await ingest.sync(self.kb, scope, directory, actor=actor, advance=advance,
                                 report=(lambda o: report(outcome(o))) if report else None)
        return [outcome(o) for o in done]

    async def remove(self, scope: str, source: str, actor: str = "cli") -> dict[str, Any]:
        return outcome(await self.kb.remove(scope, source, actor=actor))

    async def listing(self, scope: str | None, since: float) -> list[dict[str, Any]]:
        """Per scope (every scope without one): documents, chunks and drift since ``since``."""
        rows = []
        for name in [scope] if scope else await self.kb.scopes():
            catalog = await self.kb.catalog(name)
            docs = sorted(catalog.docs.values(), key=lambda r: r.source)
            rows.append({"scope": name, "documents": len(docs),
                         "chunks": sum(r.chunks for r in docs), "drift": round(catalog.drift(since), 4),
                         "drift_since": stamp(since)[:10],
                         "docs": [{"source": r.source, "title": r.title, "version": r.version,
                                   "chunks": r.chunks, "updated": stamp(r.updated), "by": r.by}
                                  for r in docs]})
        return rows

    async def show(self, scope: str, source: str) -> dict[str, Any]:
        """A document's record and version history, times as ISO stamps."""
        rec, history = await self.kb.show(scope, source)
        return {"document": rec.__dict__ | {"updated": stamp(rec.updated)},
                "history": [e | {"ts": stamp(float(str(e["ts"])))} for e in history]}

    async def search(self, scope: str, query: str, limit: int = 5) -> list[dict[str, Any]]:
        """The scope and global, as a member's agent there would search them."""
        hits = await self.kb.search([scope, "global"], query, limit=limit)
        return [{"score": h.score, "citation": citation(h), "text": h.text} for h in hits]
