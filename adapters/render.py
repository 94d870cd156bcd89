"""Admin results (``bot.ops.admin``) as chat text, shared by the Discord and Slack commands.

``bold`` is the platform's bold marker: ``**`` for Discord Markdown, ``*`` for Slack mrkdwn.
"""

from __future__ import annotations

import re
from typing import Any

_SNIPPET = 300


def quote(text: str) -> str:
    return "\n".join(f"> {line}" for line in text.strip().splitlines()) if text.strip() else "> (empty)"


def snippet(text: str, size: int = _SNIPPET) -> str:
    text = " ".join(text.split())
    return text if len(text) <= size else text[: size - 1].rsplit(" ", 1)[0] + "…"


def show(d: dict[str, Any], bold: str = "**") -> str:
    b = bold
    parts = [
        f"{b}Memory of {d['user']}{b}",
        f"{b}Persona{b} ({len(d['persona'])}/{d['persona_limit']} chars)\n{quote(d['persona'])}",
        f"{b}About you{b} ({len(d['human'])}/{d['human_limit']} chars)\n{quote(d['human'])}",
    ]
    if d.get("summary"):
        parts.append(f"{b}Summary of older conversation{b}\n{quote(d['summary'])}")
    parts.append(
        f"Messages in context: {d['fifo_messages']} · in recall: {d['recall_messages']} · "
        f"archival notes: {d['archival_notes']}\n"
        f"Last memory edit: {d.get('last_edit') or 'never'} · "
        f"next heartbeat: {d.get('next_heartbeat') or 'none scheduled'}"
    )
    return "\n\n".join(parts)


def hits(items: list[dict[str, Any]], query: str, bold: str = "**") -> str:
    if not items:
        return f"Nothing in memory matches “{snippet(query, 80)}”."
    lines = [f"{bold}Closest matches for “{snippet(query, 80)}”{bold}"]
    for i, h in enumerate(items, 1):
        lines.append(f"{i}. [{h['timestamp'][:16].replace('T', ' ')}] {h['role'] or 'note'}: "
                     f"{snippet(h['text'])}  (score {h['score']:.2f})")
    return "\n".join(lines)


def forget_preview(items: list[dict[str, Any]], query: str, bold: str = "**") -> str:
    if not items:
        return f"No archival notes match “{snippet(query, 80)}”; nothing to forget."
    lines = [f"{bold}These {len(items)} archival notes match. Forget them?{bold}"]
    lines += [f"{i}. {snippet(h['text'], 200)}" for i, h in enumerate(items, 1)]
    return "\n".join(lines)


def status(d: dict[str, Any], bold: str = "**") -> str:
    checks = " · ".join(f"{name} {'ok' if ok else 'FAILING'}" for name, ok in d["checks"].items())
    return (f"{bold}membot status{bold}\nKnown users: {d['known_users']} · active now: "
            f"{d['active_users']} · queued: {d['queue_depth']} · running: "
            f"{'yes' if d['running'] else 'no'}\nChecks: {checks or 'none'}")


def parse_ids(raw: str) -> frozenset[str]:
    """Comma/space-separated ids from a setting such as DISCORD_ADMIN_IDS."""
    return frozenset(x for x in re.split(r"[,\s]+", raw) if x)
