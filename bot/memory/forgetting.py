"""The forgetting curve and supersession of archival notes: how a note's ranking is
adjusted by its use, its importance, its age and whether a newer note replaced it.

A note's meta may carry (all optional; notes written before this have none):
- ``importance``: 1-5, set by the agent on insert (3 when not given); 5 pins the note
  (its time decay is off and it never fades below 1x);
- ``uses`` / ``last_used``: how many times the note was shown in a search result page, and
  when last (``touch``);
- ``topic``: what the note states ("user.city"); a newer note on the same topic supersedes
  it: ``valid_to`` = when the newer note was said, ``superseded_by`` = its id.

Ranking (``rescore``): the fused search score times a soft multiplier in
``[LOW, HIGH]`` = 0.5x..1.5x, from ``x = a * recent_use + b * importance - c * decay``
(MemGPT practice guides' weight), squashed with tanh. It never filters and never deletes:
an old unused note still ranks on its words and meaning, just lower. Superseded notes then
go after the note that replaced them (current fact first; the old one is shown as history).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from bot.protocols import Hit, MemoryItem

LOW, HIGH = 0.5, 1.5
DAY = 86_400.0
PIN = 5


@dataclass(frozen=True)
class Curve:
    """Weights of the curve: ``a`` recent use, ``b`` importance, ``c`` time decay; ``half_life_days``
    for both the decay of a note's age and of its uses. All zero = ranking unchanged."""

    a: float = 0.5
    b: float = 0.5
    c: float = 0.5
    half_life_days: float = 90.0


def importance(item: MemoryItem) -> int:
    value = item.meta.get("importance", 3)
    return min(max(int(value), 1), 5) if isinstance(value, (int, float)) else 3


def is_current(item: MemoryItem) -> bool:
    return not item.meta.get("valid_to")


def multiplier(item: MemoryItem, now: float, curve: Curve) -> float:
    """The bounded soft weight (0.5..1.5) of one note at ``now``."""
    half = max(curve.half_life_days, 1e-3) * DAY
    last = float(item.meta.get("last_used") or item.ts)
    fade = 2.0 ** (-max(now - last, 0.0) / half)  # 1 when just used or written, -> 0 with time
    uses = float(item.meta.get("uses") or 0)
    recent_use = 1.0 - math.exp(-uses * fade / 3.0)  # 0..1: many recent uses -> 1
    imp = (importance(item) - 3) / 2.0  # -1..1
    age = 2.0 ** (-max(now - max(item.ts, last), 0.0) / half)
    decay = 0.0 if importance(item) >= PIN else 1.0 - age  # 0 fresh .. 1 long untouched
    x = curve.a * recent_use + curve.b * imp - curve.c * decay
    m = 1.0 + 0.5 * math.tanh(x)
    return max(m, 1.0) if importance(item) >= PIN else min(max(m, LOW), HIGH)


def rescore(hits: Sequence[Hit], now: float, curve: Curve) -> list[Hit]:
    """Hits re-ranked by score x multiplier; a superseded note follows its replacement when
    both are in the list."""
    scored = sorted((Hit(h.item, h.score * multiplier(h.item, now, curve)) for h in hits),
                    key=lambda h: -h.score)
    return current_first(scored)


def current_first(hits: Sequence[Hit]) -> list[Hit]:
    """Order kept, except that a superseded note waits until the note that replaced it
    (directly or through a chain) has been placed."""
    present = {h.item.id for h in hits}
    waiting: dict[str, list[Hit]] = {}
    out: list[Hit] = []

    def place(hit: Hit) -> None:
        out.append(hit)
        for later in waiting.pop(hit.item.id, []):
            place(later)

    for hit in hits:
        successor = hit.item.meta.get("superseded_by")
        if isinstance(successor, str) and successor in present and successor not in {h.item.id for h in out}:
            waiting.setdefault(successor, []).append(hit)
        else:
            place(hit)
    for rest in waiting.values():  # successor never placed (cannot happen; kept for safety)
        out.extend(rest)
    return out


def touched(item: MemoryItem, now: float) -> dict[str, object]:
    """The meta of a note after it was shown once more at ``now``."""
    return {**item.meta, "uses": int(item.meta.get("uses") or 0) + 1, "last_used": now}
