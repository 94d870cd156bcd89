"""Write hygiene: what must never be saved as a new fact in archival memory.

Re-extracting what the memory itself produced fills it with junk (mem0 #4573: 97.8% of
stored items were recalled memories saved again). A note is refused when it is
- our own search output pasted back (result headers, ``[2024-05-08 13:56] Speaker:`` lines);
- a copy of a tool result, a system alert, a heartbeat or the system instructions that are
  in the agent's context (``sources``): the agent must state the fact in its own words,
  from what the user said.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MIN_COPY = 40  # a shorter note may repeat a few words of a tool result by chance
_HEADERS = ("past messages, best match first", "past messages in time order", "archival notes, best match first",
            "no past messages found", "no archival notes found", "near-duplicates; merge", "(more: page=")
_STAMPED = re.compile(r"^\s*>?\s*\[\d{4}-\d{2}-\d{2} \d{2}:\d{2}\]", re.M)
NOT_FACT_KINDS = ("tool_result", "system_alert", "heartbeat", "login", "summary")


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def junk_reason(note: str, sources: Iterable[str]) -> str | None:
    """Why ``note`` must not be saved as a fact, or None when it may."""
    text = _norm(note)
    if any(h in text for h in _HEADERS) or _STAMPED.search(note):
        return "it is search output (recalled memory), not a new fact"
    if len(text) >= MIN_COPY:
        for source in sources:
            if text in _norm(source):
                return "it copies tool output or system text"
    return None
