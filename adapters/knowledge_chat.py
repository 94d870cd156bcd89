"""``/knowledge add|list|remove|search`` as chat text, shared by Discord and Slack.

The scope is always the place the command runs in (``discord:GUILD`` / ``slack:TEAM``),
never an argument: a server admin acts on their own server's knowledge only. Adding,
listing and removing need an admin of that place (checked by the adapter on every call);
searching is for every member. ``bold`` is ``**`` (Discord) or ``*`` (Slack).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from adapters import render
from bot.errors import KnowledgeError
from bot.knowledge.render import citation
from bot.knowledge.scopes import GLOBAL
from bot.messages import stamp

if TYPE_CHECKING:
    from bot.service import Service

NO_PLACE = ("Knowledge belongs to a server or workspace: run this in the server, not in a "
            "DM (the operator manages deployment-wide documents with `membot knowledge`).")


def too_big(svc: Service, size: int) -> None:
    """Refuse an upload over the size limit before downloading it."""
    limit = svc.knowledge.max_bytes
    if size > limit:
        raise KnowledgeError(f"the file is {size / 1_048_576:.1f} MB; the limit is "
                             f"{limit / 1_048_576:.1f} MB")


async def add(svc: Service, scope: str, filename: str, data: bytes, actor: str,
              bold: str = "**") -> str:
    try:
        out = await svc.knowledge.add(scope, filename, data, actor=actor)
    except KnowledgeError as exc:
        raise KnowledgeError(f"{filename} {exc}; nothing changed") from None
    b = bold
    if out.status == "unchanged":
        return f"{b}{filename}{b} is already in the knowledge base (v{out.version}, unchanged)."
    change = out.change
    what = (f"{change.added} new or changed, {change.removed} removed, {change.kept} kept"
            if change is not None and out.status == "updated" else f"{out.chunks} chunks")
    return (f"{b}{filename}{b} {out.status}: version {out.version}, {what}. Members' agents "
            "can now search it.")


async def listing(svc: Service, scope: str, bold: str = "**") -> str:
    catalog = await svc.knowledge.catalog(scope)
    days = svc.settings.knowledge_drift_days
    drift = catalog.drift(time.time() - days * 86_400)
    b = bold
    if not catalog.docs:
        return f"{b}Knowledge of this server{b}: no documents yet. Admins add one with `/knowledge add`."
    lines = [f"{b}Knowledge of this server{b}: {len(catalog.docs)} documents, "
             f"{sum(r.chunks for r in catalog.docs.values())} chunks, drift {drift:.0%} "
             f"in the last {days:g} days"]
    for r in sorted(catalog.docs.values(), key=lambda r: r.source):
        lines.append(f"• {r.source} — {r.title} (v{r.version}, {r.chunks} chunks, "
                     f"{stamp(r.updated)} by {r.by})")
    return "\n".join(lines)


async def remove(svc: Service, scope: str, source: str, actor: str) -> str:
    if not source.strip():
        raise KnowledgeError("name the document to remove (as `/knowledge list` shows it)")
    out = await svc.knowledge.remove(scope, source, actor=actor)
    return f"Removed {out.source} (v{out.version}, {out.chunks} chunks); its history is kept."


async def search(svc: Service, scope: str, query: str, bold: str = "**") -> str:
    scopes = [scope, GLOBAL] if scope else [GLOBAL]
    hits = await svc.knowledge.search(scopes, query, limit=5)
    if not hits:
        return f"No document matches “{render.snippet(query, 80)}”."
    b = bold
    parts = [f"{b}{citation(h)}{b}\n{render.quote(render.snippet(h.text))}" for h in hits]
    return "\n\n".join(parts)
