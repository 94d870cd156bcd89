"""Admin results (``bot.ops.admin``) as chat text, shared by the Discord and Slack commands.

``bold`` is the platform's bold marker: ``**`` for Discord Markdown, ``*`` for Slack mrkdwn.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

_SNIPPET = 300
PAUSED = ("Memory paused: I still answer, but I keep nothing of what you say (no notes, no "
          "recall, no summary) until `/memory resume`.")
RESUMED = "Memory resumed: I remember again. What you said while paused is gone."


def quote(text: str) -> str:
    return "\n".join(f"> {line}" for line in text.strip().splitlines()) if text.strip() else "> (empty)"


def snippet(text: str, size: int = _SNIPPET) -> str:
    text = " ".join(text.split())
    if len(text) <= size:
        return text
    cut = text[: size - 1]
    head = cut.rsplit(" ", 1)[0]
    return (head if len(head) >= size // 2 else cut) + "…"  # no word break: cut the word


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
    links = d.get("links") or []
    parts.append("Identities sharing this memory: " + (", ".join(links) if links else "none")
                 + (" · memory is PAUSED" if d.get("memory_paused") else ""))
    return "\n\n".join(parts)


def hits(items: list[dict[str, Any]], query: str, bold: str = "**") -> str:
    if not items:
        return f"Nothing in memory matches “{snippet(query, 80)}”."
    lines = [f"{bold}Closest matches for “{snippet(query, 80)}”{bold}"]
    for i, h in enumerate(items, 1):
        lines.append(f"{i}. [{h['timestamp'][:16].replace('T', ' ')}] {h['role'] or 'note'}: "
                     f"{snippet(h['text'])}  (score {h['score']:.2f})")
    return "\n".join(lines)


def forget_preview(plan: Any, bold: str = "**") -> str:
    """What ``/memory forget`` would remove (a ``bot.ops.forget.ForgetPlan``)."""
    if plan.empty:
        return f"Nothing in memory matches “{snippet(plan.query, 80)}”; nothing to forget."
    counts = plan.counts()
    lines = [f"{bold}This goes, everywhere it is kept. Forget it?{bold}",
             receipt(counts).replace("Removed: ", "Will remove: ")]
    lines += [f"{i}. {snippet(text, 200)}" for i, text in enumerate(plan.preview(), 1)]
    return "\n".join(lines)


def audit(entries: list[Any], bold: str = "**", limit: int = 30) -> str:
    """A person's audit trail (``bot.ops.audit.AuditEntry``), newest first."""
    if not entries:
        return "Nobody has acted on your memory yet."
    lines = [f"{bold}Actions on your memory (newest first){bold}"]
    for e in list(reversed(entries))[:limit]:
        when = datetime.fromtimestamp(e.ts, UTC).strftime("%Y-%m-%d %H:%M")
        extra = ", ".join(f"{k} {v}" for k, v in sorted(e.details.items()))
        lines.append(f"• {when} UTC — {e.action} by {e.actor}" + (f" ({extra})" if extra else ""))
    if len(entries) > limit:
        lines.append(f"(and {len(entries) - limit} older)")
    return "\n".join(lines)


LINK_CODE = ("Your one-time link code: {code} (valid 10 minutes, shown only to you). On your "
             "other account run `/memory link {code}` (Discord or Slack) to make it share this "
             "memory. `/memory unlink` undoes it.")


RECEIPT = {"fifo_messages": "messages in context", "queued_events": "queued events",
           "recall": "recall messages", "archival": "archival notes", "core_lines": "core memory lines",
           "summary_sentences": "summary sentences", "redis_keys": "hot-state keys",
           "dedupe_keys": "dedupe keys", "links": "identity links"}


def receipt(counts: dict[str, int]) -> str:
    """What a reset or forget removed, per store."""
    parts = [f"{counts[k]} {label}" for k, label in RECEIPT.items() if k in counts]
    return "Removed: " + (", ".join(parts) if parts else "nothing") + "."


def channels(ids: frozenset[str] | set[str], opt_in: bool, mention: str = "<#{}>") -> str:
    """The channels a server admin enabled (CHANNEL_OPT_IN)."""
    listed = ", ".join(mention.format(i) for i in sorted(ids)) or "none"
    mode = ("only in these channels (CHANNEL_OPT_IN is on)" if opt_in
            else "in every channel (CHANNEL_OPT_IN is off; this list takes effect when it is on)")
    return f"Enabled channels: {listed}. The bot answers mentions {mode}."


def status(d: dict[str, Any], bold: str = "**") -> str:
    checks = " · ".join(f"{name} {'ok' if ok else 'FAILING'}" for name, ok in d["checks"].items())
    return (f"{bold}membot status{bold}\nKnown users: {d['known_users']} · active now: "
            f"{d['active_users']} · queued: {d['queue_depth']} · running: "
            f"{'yes' if d['running'] else 'no'}\nChecks: {checks or 'none'}")


def parse_ids(raw: str) -> frozenset[str]:
    """Comma/space-separated ids from a setting such as DISCORD_ADMIN_IDS."""
    return frozenset(x for x in re.split(r"[,\s]+", raw) if x)
