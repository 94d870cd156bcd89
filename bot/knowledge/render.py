"""Knowledge search results as the text the agent (and the chat commands) read: each hit
cites its document and section, so the answer can say where it comes from."""

from __future__ import annotations

from collections.abc import Sequence

from bot.knowledge.base import KnowledgeHit
from bot.knowledge.chunking import SECTION_SEP
from bot.knowledge.scopes import GLOBAL


def citation(hit: KnowledgeHit) -> str:
    """'Handbook > Vacation (handbook.md v2)'; the scope is named only for global ones."""
    where = SECTION_SEP.join(x for x in (hit.title, hit.section) if x)
    tag = ", deployment-wide" if hit.scope == GLOBAL else ""
    return f"{where} ({hit.source} v{hit.version}{tag})"


def hits(found: Sequence[KnowledgeHit], page: int, size: int, max_chars: int,
         more: bool) -> str:
    if not found:
        return "No documents match" + (" on this page." if page else ".")
    first = page * size + 1
    head = (f"Knowledge documents, best match first (page {page}: results {first}-"
            f"{first + len(found) - 1}); cite the document and section:")
    tail = f"\n(more: page={page + 1})" if more else ""
    lines = [f"[{first + n}] {citation(h)}:" for n, h in enumerate(found)]
    budget = max_chars - len(head) - len(tail) - sum(len(x) + 3 for x in lines)
    cap = max(80, budget // len(found))
    out = [head]
    for line, hit in zip(lines, found, strict=True):
        text = " ".join(hit.text.split())
        if len(text) > cap:
            text = text[:cap - 1].rstrip() + "…"
        out.append(f"{line} {text}")
    return "\n".join(out) + tail
