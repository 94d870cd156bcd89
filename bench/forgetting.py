"""Archival ranking with the forgetting curve and supersession, against no adjustment, in the
same run.

Two stores of archival notes (one embedded Qdrant store, real MiniLM embeddings):
- LoCoMo dev: every turn of the three conversations saved as a note ("Speaker: text", dated
  when said), one user per conversation; every question asked through
  ``search.ranked(..., "archival")``; evidence recall@5/@10. Must not drop.
- updated facts (bench.devset_chat): every user turn of the chat set saved as a note dated
  when said; update questions ask for the current and for the earlier value of a fact
  that changed. Variants: no adjustment; the forgetting curve (FORGET_* defaults); the
  curve plus supersession (the two statements of a changing fact saved with its topic, as
  the agent does with ``archival_memory_insert(topic=...)``).
Notes have no uses and default importance here (what an import gives); the curve then
reduces to its time decay.

Run: python -m bench.forgetting
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench import locomo
from bench.devsets import load_set
from bench.retrieval import MODEL, build
from bot.memory import search
from bot.memory.forgetting import Curve
from bot.protocols import MemoryItem
from bot.service import Service


async def save(svc: Service, user: str, conv: locomo.Conversation, *, users_only: bool,
               topics: dict[str, str]) -> dict[float, str]:
    """The turns as archival notes (written in bulk, then superseded in the order said, as
    one ``save_note`` per note would)."""
    turns = [t for t in conv.turns if not users_only or t.speaker == conv.speaker_a]
    items = [MemoryItem(uuid.uuid4().hex, user, f"{t.speaker}: {t.text}", t.ts, "agent", "passage",
                        {"topic": topics[t.dia]} if t.dia in topics else {}) for t in turns]
    await svc.memory.write("archival", items)
    for item in items:
        if item.meta.get("topic"):
            await svc.memory.supersede(user, item)
    return {t.ts: t.dia for t in turns}


async def ask(svc: Service, user: str, conv: locomo.Conversation, dia: dict[float, str],
              curve: Curve, kinds: tuple[str, ...] | None) -> list[tuple[list[str], set[str], str]]:
    svc.memory.curve = curve
    rows = []
    for q in conv.questions:
        if kinds is not None and q.kind not in kinds:
            continue
        items = await search.ranked(svc.memory, "archival", user, q.text, now=conv.now)
        rows.append(([dia.get(i.ts, "") for i in items], q.evidence, q.kind, q.topic))
    return rows


Row = tuple[list[str], set[str], str, str]  # ranked dia ids, evidence, question type, topic


def score(rows: list[Row], kind: str | None = None) -> tuple[float, float]:
    rs = [r for r in rows if kind is None or r[2] == kind]
    return (statistics.fmean(locomo.recall_at(r, e, 5) for r, e, _, _ in rs),
            statistics.fmean(locomo.recall_at(r, e, 10) for r, e, _, _ in rs)) if rs else (0.0, 0.0)


def current_first(rows: list[Row]) -> list[bool]:
    """Per question for a fact's current value (rows of one conversation): does the current
    statement rank above the earlier one (the evidence of the same topic's "previous"
    question)? What the curve and supersession are for, and what recall@k cannot show when
    both statements are found."""
    before = {topic: ev for _, ev, kind, topic in rows if kind == "update_previous" and topic}
    out = []
    for ranked, evidence, kind, topic in rows:
        if kind != "update_current" or topic not in before:
            continue
        pos = {d: n for n, d in reversed(list(enumerate(ranked)))}
        now_at = min((pos[d] for d in evidence if d in pos), default=len(ranked) + 1)
        then_at = min((pos[d] for d in before[topic] if d in pos), default=len(ranked) + 2)
        out.append(now_at < then_at)
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    off, on = Curve(0, 0, 0), Curve()
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="membot-forget-") as tmp:
        args.other_users = 0
        svc = await build(args, Path(tmp) / "q")
        try:
            rows: dict[str, list[Any]] = {"off": [], "on": []}
            for c in load_set("locomo", args.seed):
                dia = await save(svc, f"bench:fa:{c.name}", c, users_only=False, topics={})
                for name, curve in (("off", off), ("on", on)):
                    rows[name] += await ask(svc, f"bench:fa:{c.name}", c, dia, curve, None)
            out["locomo"] = {k: score(v) for k, v in rows.items()}
            upd = ("update_current", "update_previous")
            rows = {"off": [], "on": [], "on+topics": []}
            first: dict[str, list[bool]] = {k: [] for k in rows}
            for c in load_set("chat", args.seed):
                topics = {e: q.topic for q in c.questions if q.topic for e in q.evidence}
                plain = await save(svc, f"bench:fu:{c.name}", c, users_only=True, topics={})
                got = {name: await ask(svc, f"bench:fu:{c.name}", c, plain, curve, upd)
                       for name, curve in (("off", off), ("on", on))}
                tagged = await save(svc, f"bench:ft:{c.name}", c, users_only=True, topics=topics)
                got["on+topics"] = await ask(svc, f"bench:ft:{c.name}", c, tagged, on, upd)
                for name, r in got.items():
                    rows[name] += r
                    first[name] += current_first(r)
            out["updated"] = {k: {"all": score(v), **{u: score(v, u) for u in upd},
                                  "current_first": statistics.fmean(first[k]) if first[k] else 0.0,
                                  "pairs": len(first[k])} for k, v in rows.items()}
        finally:
            await svc.redis.delete_prefix()
            await svc.close()
    return out


def report(fig: dict[str, Any]) -> None:
    lo = fig["locomo"]
    print("LoCoMo dev as archival notes (r@5 / r@10):")
    print(f"  no adjustment      {lo['off'][0]:.3f} / {lo['off'][1]:.3f}")
    print(f"  forgetting curve   {lo['on'][0]:.3f} / {lo['on'][1]:.3f}   "
          f"({'no drop' if lo['on'][1] >= lo['off'][1] - 0.005 else 'DROPS'})")
    print("updated facts (chat set update questions; r@5 / r@10: all | current | previous;"
          " current first = the current value ranked above the earlier one):")
    for name, label in (("off", "no adjustment"), ("on", "forgetting curve"), ("on+topics", "curve + supersession")):
        r = fig["updated"][name]
        print(f"  {label:20s} {r['all'][0]:.3f} / {r['all'][1]:.3f} | {r['update_current'][0]:.3f} / "
              f"{r['update_current'][1]:.3f} | {r['update_previous'][0]:.3f} / {r['update_previous'][1]:.3f}"
              f" | current first {r['current_first']:.3f} of {r['pairs']}")
    base = fig["updated"]["off"]["current_first"]
    for name in ("on", "on+topics"):
        got = fig["updated"][name]["current_first"]
        print(f"  {name}: current first {got:.3f} vs {base:.3f} without adjustment "
              f"({'IMPROVES' if got > base else 'DOES NOT IMPROVE'})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--model", type=Path, default=MODEL)
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = ap.parse_args()
    t0 = time.perf_counter()
    fig = asyncio.run(run(args))
    report(fig)
    print(f"({time.perf_counter() - t0:.0f} s)")
    print(json.dumps({"bench": "forgetting", **fig}))


if __name__ == "__main__":
    main()
