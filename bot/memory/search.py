"""What the search tools return to the model: ranked, paged, dated, readable.

Ranking (``ranked``): one user's items by hybrid search (dense + BM25 fused inside Qdrant,
see bot.stores), over texts indexed with their speaker and the turn before them (see
bot.memory.longterm). Dates in the query ("last week", "in May", "2023-05-08", see
bot.memory.timeparse) are a soft boost: the ranking within that time is fused with the plain
one (a hard filter lost 0.21 of evidence recall@10 on LoCoMo's dated questions; the boost
gains 0.04). A query that names only a time ("what did I say yesterday") lists that time
in order instead. Tool traffic is dropped and identical texts collapsed; the ranking has
a fixed depth and pages are slices of it, so the same query gives the same, disjoint pages.

Rendering: who said it and when (``[2023-05-08 13:56] Caroline: ...``); a conversation
match comes with the turn before and after it (fetched by time), overlapping windows
merged into one block; lines are clipped so a page fits ``tool_result_max_chars``.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterable, Sequence

from bot.errors import ToolError
from bot.memory import forgetting, timeparse
from bot.memory.longterm import CONTEXT_GAP_S, LongTermMemory, is_turn, speaker, words
from bot.memory.timeparse import TimeRange
from bot.messages import stamp
from bot.protocols import Collection, Hit, MemoryItem

DEPTH = 50  # results one query can page through
FETCH = 64  # store hits fetched to fill DEPTH once tool traffic and repeats are dropped
HIT_CHARS = 700  # longest match line before the page budget applies
CONTEXT_CHARS = 160  # longest context line
LIST_CHUNK = 200  # items read per store call when listing a time span
# Speaker priors (``speaker_prior``), measured on both dev sets (bench.devsets): on the chat
# set (answers in short user statements among long assistant turns) r@10 +0.12, LoCoMo +-0.01.
ROLE_PRIOR = 1.6
STATEMENT_PRIOR = 1.3
# (dense, sparse) fusion weights for questions about the user ("my", "I", "the user"): people
# ask about their own life in other words than they told it, so meaning counts more than
# words (chat set r@10 +0.04 in simulation; LoCoMo's questions name people, unchanged).
ABOUT_USER_WEIGHTS = (1.0, 0.3)
_ABOUT_USER = re.compile(r"\b(i|me|my|mine|myself|i'm|i've|i'd|user|user's)\b", re.I)
_ASSISTANT_SAID = re.compile(r"\byour?\b.{0,40}?\b(suggest|recommend|told|said|gave|propos|mention|advis|wrote|"
                             r"explain|tip)\w*", re.I)
_SPEAKER = {"user": "user", "assistant": "you", "tool": "tool", "system": "system"}
_HIDDEN = ("tool_result", "heartbeat", "login")
_FILLER = set("""a about all an and any anything are at between chat conversation did discuss
discussed do does during else everything from happened i in is me mention mentioned message
messages my of on or our say said show talk talked tell the there this to told us was we were
what when which write wrote you""".split())


# --- ranking ---------------------------------------------------------------------------------
async def ranked(memory: LongTermMemory, collection: Collection, user: str, query: str, *,
                 now: float, vis: Sequence[str] | None = None) -> list[MemoryItem]:
    """The ranking pages are cut from: best first, at most ``DEPTH``, no tool traffic or
    repeated texts. Dates in the query (relative to ``now``) boost items from then."""
    when, _ = timeparse.find(query, now)
    prefer = (when.since, when.until) if when else None
    about_user = collection == "recall" and bool(_ABOUT_USER.search(query))
    hits = await memory.search(collection, user, query, limit=FETCH, prefer=prefer,
                               weights=ABOUT_USER_WEIGHTS if about_user else None, vis=vis)
    if collection == "archival":
        hits = forgetting.rescore(hits, now, memory.curve)
    else:
        hits = speaker_prior(query, hits)
    shown = (h.item for h in hits if collection == "archival" or _shown(h.item))
    return _distinct(shown)[:DEPTH]


def speaker_prior(query: str, hits: Sequence[Hit]) -> list[Hit]:
    """Re-rank by who is likely to have said the answer: a question about the user ("my",
    "I", "the user") favours the user's turns, one about what the assistant said ("what did
    you suggest") the assistant's; the user's statements (not their questions) hold what
    they told about themselves. Soft weights on the fused score, never a filter."""
    want = "assistant" if _ASSISTANT_SAID.search(query) else "user" if _ABOUT_USER.search(query) else ""
    out = []
    for hit in hits:
        weight = ROLE_PRIOR if want and hit.item.role == want else 1.0
        if hit.item.role == "user" and not words(hit.item).rstrip().endswith("?"):
            weight *= STATEMENT_PRIOR
        out.append(Hit(hit.item, hit.score * weight))
    return sorted(out, key=lambda h: -h.score)  # stable: equal scores keep the fused order


def _shown(item: MemoryItem) -> bool:
    return item.kind not in _HIDDEN and bool(words(item, calls=True))


def _distinct(items: Iterable[MemoryItem]) -> list[MemoryItem]:
    seen: set[str] = set()
    out = []
    for item in items:
        key = " ".join(words(item, calls=True).lower().split())
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def _only_time(rest: str) -> bool:
    """True when nothing but filler is left once the dates are taken out of a query."""
    return all(w.strip("?!.,'\"") in _FILLER for w in rest.lower().split())


# --- tools -----------------------------------------------------------------------------------
async def conversation(memory: LongTermMemory, user: str, query: str, page: object, size: int,
                       now: float | None = None, max_chars: int = 2_500,
                       vis: Sequence[str] | None = None) -> str:
    p, now = _page(page), time.time() if now is None else now
    when, rest = timeparse.find(_query(query), now)
    if when is not None and _only_time(rest):
        return await _list(memory, user, when, p, size, max_chars, vis)
    found, hits = await _ranked_page(memory, "recall", user, query, p, size, now, vis)
    if not hits:
        return "No past messages found" + (" on this page." if p else ".")
    blocks = _merge(hits, await asyncio.gather(*(_window(memory, user, h, vis) for h in hits)))
    head = (f"Past messages, best match first (page {p}: matches {p * size + 1}-{p * size + len(hits)};"
            f" '>' marks a match, other lines are the turns around it){_dates(when, 'favouring ')}:")
    more = len(found) > (p + 1) * size
    return _fit(head, blocks, {h.id for h in hits}, max_chars, more, p)


async def archival(memory: LongTermMemory, user: str, query: str, page: object, size: int,
                   now: float | None = None, max_chars: int = 2_500,
                   vis: Sequence[str] | None = None) -> str:
    p, now = _page(page), time.time() if now is None else now
    found, hits = await _ranked_page(memory, "archival", user, _query(query), p, size, now, vis)
    if not hits:
        return "No archival notes found" + (" on this page." if p else ".")
    await memory.touch(user, hits, now)
    when, _ = timeparse.find(query, now)
    head = (f"Archival notes, best match first (page {p}: results {p * size + 1}-{p * size + len(hits)})"
            f"{_dates(when, 'favouring saved ')}:")
    return _fit(head, [[h] for h in hits], set(), max_chars, len(found) > (p + 1) * size, p)


async def conversation_by_date(memory: LongTermMemory, user: str, start: str, end: str,
                               page: object, size: int, max_chars: int = 2_500,
                               vis: Sequence[str] | None = None) -> str:
    p = _page(page)
    since, until = parse_day(start, "start_date"), parse_day(end, "end_date")
    if until.until <= since.since:
        raise ToolError("end_date is before start_date")
    return await _list(memory, user, TimeRange(since.since, until.until), p, size, max_chars, vis)


def parse_day(text: str, field: str) -> TimeRange:
    found = timeparse.parse_date(text)
    if found is None:
        raise ToolError(f"{field} must be a date like 2024-05-31")
    return found


def _query(query: str) -> str:
    if not query.strip():
        raise ToolError("query is empty")
    return query


async def _ranked_page(memory: LongTermMemory, collection: Collection, user: str, query: str, p: int,
                       size: int, now: float, vis: Sequence[str] | None) -> tuple[list[MemoryItem], list[MemoryItem]]:
    """The whole ranking and page ``p`` of it."""
    found = await ranked(memory, collection, user, query, now=now, vis=vis)
    return found, found[p * size:(p + 1) * size]


def _page(page: object) -> int:
    if not isinstance(page, int) or page < 0:
        raise ToolError("page must be a whole number from 0")
    return page


# --- listing a time span ---------------------------------------------------------------------
async def _list(memory: LongTermMemory, user: str, when: TimeRange, p: int, size: int,
                max_chars: int, vis: Sequence[str] | None = None) -> str:
    """Messages of a time span in order, ``size`` per page (tool traffic skipped)."""
    want, offset = (p + 1) * size + 1, 0
    got: list[MemoryItem] = []
    while len(got) < want:
        chunk = await memory.by_time("recall", user, since=when.since, until=when.until,
                                     limit=LIST_CHUNK, offset=offset, vis=vis)
        got += [i for i in chunk if _shown(i)]
        offset += len(chunk)
        if len(chunk) < LIST_CHUNK:
            break
    items = got[p * size:(p + 1) * size]
    if not items:
        return "No past messages found" + (" on this page." if p else ".") + _dates(when)
    head = f"Past messages in time order (page {p}: {p * size + 1}-{p * size + len(items)}){_dates(when)}:"
    return _fit(head, [items], set(), max_chars, len(got) > (p + 1) * size, p)


def _dates(when: TimeRange | None, lead: str = "") -> str:
    """'; from 2024-05-01 to 2024-05-31' ('; on 2024-05-08'), after ``lead`` if given."""
    if when is None:
        return ""
    last = stamp(max(when.since, when.until - 1))[:10]
    first = stamp(when.since)[:10] if when.since > 0 else "the start"
    span = f"from {first} to {last}" if first != last else f"on {first}"
    return f"; {lead}{span}"


# --- context windows -------------------------------------------------------------------------
async def _window(memory: LongTermMemory, user: str, hit: MemoryItem,
                  vis: Sequence[str] | None = None) -> list[MemoryItem]:
    """The hit with the conversation turn before and after it (within ``CONTEXT_GAP_S``),
    of the origins ``vis`` allows."""
    before, after = await asyncio.gather(
        memory.by_time("recall", user, since=hit.ts - CONTEXT_GAP_S, until=hit.ts, limit=10,
                       newest_first=True, vis=vis),
        memory.by_time("recall", user, since=hit.ts, until=hit.ts + CONTEXT_GAP_S, limit=10,
                       vis=vis))
    prev = next((i for i in before if is_turn(i)), None)
    nxt = next((i for i in after if i.id != hit.id and is_turn(i)), None)
    return [i for i in (prev, hit, nxt) if i is not None]


def _merge(hits: Sequence[MemoryItem], windows: Sequence[list[MemoryItem]]) -> list[list[MemoryItem]]:
    """One block per hit, in rank order; windows that share a message become one block."""
    blocks: list[dict[str, MemoryItem]] = []
    for window in windows:
        block = {i.id: i for i in window}
        for other in [b for b in blocks if b.keys() & block.keys()]:
            block = other | block
            blocks.remove(other)
        blocks.append(block)
    rank = {h.id: n for n, h in enumerate(hits)}
    blocks.sort(key=lambda b: min(rank.get(i, len(rank)) for i in b))
    return [sorted(b.values(), key=lambda i: i.ts) for b in blocks]


# --- rendering -------------------------------------------------------------------------------
def _who(item: MemoryItem) -> str:
    if item.kind == "passage":
        return "note" if item.role in ("", "agent") else f"note ({item.role})"
    who = speaker(item)
    return _SPEAKER.get(who, who) if who == item.role else who


def _text(item: MemoryItem) -> str:
    return " ".join((words(item, calls=True) or item.text).split())


def _line(item: MemoryItem, limit: int) -> str:
    text = _text(item)
    if len(text) > limit:
        text = text[:max(limit - 1, 0)].rstrip() + "…"
    until = item.meta.get("valid_to") if item.kind == "passage" else None
    old = f" (superseded, until {stamp(float(until))[:10]})" if isinstance(until, (int, float)) else ""
    return f"[{stamp(item.ts)}] {_who(item)}{old}: {text}"


def _fit(head: str, blocks: list[list[MemoryItem]], marked: set[str], max_chars: int,
         more: bool, p: int) -> str:
    """Render blocks (``--`` between them when they have context lines), clipping lines so
    the whole fits ``max_chars``: matches first, context lines share what is left."""
    tail = f"\n(more: page={p + 1})" if more else ""
    lines = [i for b in blocks for i in b]
    main = [i for i in lines if not marked or i.id in marked]
    side = [i for i in lines if marked and i.id not in marked]
    overhead = sum(len(_line(i, 0)) + 3 for i in lines) + 3 * len(blocks)
    budget = max_chars - len(head) - len(tail) - overhead
    cap = max(60, min(HIT_CHARS, budget // max(len(main), 1)))
    left = budget - sum(min(len(_text(i)), cap) for i in main)
    side_cap = min(CONTEXT_CHARS, left // len(side)) if side else 0
    out = [head]
    for n, block in enumerate(blocks):
        if marked and n:
            out.append("--")
        for item in block:
            if not marked or item.id in marked:
                out.append(("> " if marked else "") + _line(item, cap))
            elif side_cap >= 40:
                out.append("  " + _line(item, side_cap))
    return "\n".join(out) + tail
