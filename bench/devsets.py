"""Retrieval quality on both development sets, with the baselines measured in the same run.

Sets: LoCoMo dev (../shared/data/locomo-dev, 3 conversations) and the generated chat set
(bench.devset_chat: one user and an assistant, long answers, preferences, instructions,
updated facts; generated here from its seed, nothing read from other benchmarks).

Each conversation is imported into its own user through ``Admin.import_lines`` (one
embedded Qdrant store, no other users: quality, not load; bench.retrieval measures the
crowded store), each question asked through ``bot.memory.search.ranked`` (what
``conversation_search`` pages through) with ``now`` a day after the last session, scored by
evidence recall@5/@10. Baselines over the same turns: Okapi BM25, dense cosine (same
model) and their RRF (k=60), on raw turn texts and on "Speaker: text"; "best baseline" is
the best of those six per set and k. Per question type: membot vs the best baseline.

Run: python -m bench.devsets [--set locomo|chat|both] [--seed 7] [--quantize int8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench import devset_chat, locomo, retrieval
from bench.retrieval import DATA, MODEL, build
from bot.memory import search
from bot.service import Service

Row = tuple[list[str], set[str]]


def score(rows: Sequence[Row]) -> tuple[float, float]:
    if not rows:
        return (0.0, 0.0)
    return (statistics.fmean(locomo.recall_at(r, e, 5) for r, e in rows),
            statistics.fmean(locomo.recall_at(r, e, 10) for r, e in rows))


def distinct(ids: Sequence[str]) -> list[str]:
    """Turn ids in rank order, each once (chunks of one turn map to the same id)."""
    seen: set[str] = set()
    return [i for i in ids if i and not (i in seen or seen.add(i))]  # type: ignore[func-returns-value]


def load_set(name: str, seed: int) -> list[locomo.Conversation]:
    if name == "locomo":
        return locomo.load(DATA)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "chat.json"
        path.write_text(json.dumps(devset_chat.generate(seed)))
        return locomo.load(path)


async def membot_rows(svc: Service, convs: list[locomo.Conversation]) -> tuple[list[Row], list[str], list[float]]:
    rows, kinds, lat = [], [], []
    for c in convs:
        user, dia = f"bench:dev:{c.name}", {t.ts: t.dia for t in c.turns}
        for q in c.questions:
            t0 = time.perf_counter()
            items = await search.ranked(svc.memory, "recall", user, q.text, now=c.now)
            lat.append(time.perf_counter() - t0)
            rows.append((distinct([dia.get(i.ts, "") for i in items]), q.evidence))
            kinds.append(q.kind)
    return rows, kinds, lat


async def baseline_rows(svc: Service, convs: list[locomo.Conversation]) -> dict[str, list[Row]]:
    """bench.retrieval's baselines (BM25, dense, RRF k=60; raw and "Speaker: text" turns)."""
    names = {"bm25": "BM25, raw", "dense": "dense, raw", "rrf": "RRF, raw", "bm25_spk": "BM25, speaker",
             "dense_spk": "dense, speaker", "rrf_spk": "RRF, speaker"}
    rows = await retrieval.baseline_rows(svc, convs)
    return {label: rows[key] for key, label in names.items()}


async def measure(name: str, convs: list[locomo.Conversation], args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="membot-devsets-") as tmp:
        args.other_users = 0
        svc = await build(args, Path(tmp) / "qdrant")
        try:
            t0 = time.perf_counter()
            for c in convs:
                await svc.admin.import_lines(f"bench:dev:{c.name}", c.import_lines(), actor="bench")
            imported = time.perf_counter() - t0
            mine, kinds, lat = await membot_rows(svc, convs)
            base = await baseline_rows(svc, convs)
        finally:
            await svc.redis.delete_prefix()
            await svc.close()
    figures = {m: score(r) for m, r in base.items()}
    best = (max(v[0] for v in figures.values()), max(v[1] for v in figures.values()))
    types = {}
    for kind in sorted(set(kinds)):
        pick = [n for n, k in enumerate(kinds) if k == kind]
        top = max(base, key=lambda m: score([base[m][n] for n in pick])[1])
        types[kind] = {"n": len(pick), "membot": score([mine[n] for n in pick]),
                       "best_baseline": score([base[top][n] for n in pick]), "which": top}
    return {"set": name, "conversations": len(convs), "turns": sum(len(c.turns) for c in convs),
            "questions": len(mine), "membot": score(mine), "baselines": figures, "best_baseline": best,
            "types": types, "import_s": imported,
            "search_p50_ms": float(np.percentile(lat, 50) * 1000), "search_p99_ms": float(np.percentile(lat, 99) * 1000)}


def report(fig: dict[str, Any]) -> None:
    print(f"\n== {fig['set']}: {fig['conversations']} conversations, {fig['turns']} turns, "
          f"{fig['questions']} questions (import {fig['import_s']:.1f} s)")
    print(f"{'method':34s} | r@5   | r@10")
    for m, (r5, r10) in sorted(fig["baselines"].items()):
        print(f"{m:34s} | {r5:.3f} | {r10:.3f}")
    b5, b10 = fig["best_baseline"]
    m5, m10 = fig["membot"]
    print(f"{'best baseline':34s} | {b5:.3f} | {b10:.3f}")
    print(f"{'membot conversation_search':34s} | {m5:.3f} | {m10:.3f}   "
          f"(vs best: {m5 - b5:+.3f} / {m10 - b10:+.3f}; "
          f"{'AHEAD' if m5 > b5 and m10 > b10 else 'NOT AHEAD'})")
    print(f"search p50 {fig['search_p50_ms']:.2f} ms, p99 {fig['search_p99_ms']:.2f} ms (incl. query embedding)")
    print(f"{'question type':16s} {'n':>4s} | membot r@5 r@10 | best baseline r@5 r@10 (which)")
    for kind, t in fig["types"].items():
        print(f"{kind:16s} {t['n']:4d} |   {t['membot'][0]:.3f} {t['membot'][1]:.3f}  |   "
              f"{t['best_baseline'][0]:.3f} {t['best_baseline'][1]:.3f} ({t['which']})")


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    names = ["locomo", "chat"] if args.set == "both" else [args.set]
    return [await measure(n, load_set(n, args.seed), args) for n in names]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", choices=["locomo", "chat", "both"], default="both")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--model", type=Path, default=MODEL)
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    ap.add_argument("--quantize", choices=["none", "int8"], default="none",
                    help="EMBEDDING_QUANTIZE for membot's side (the baselines use the same embedder)")
    args = ap.parse_args()
    figs = asyncio.run(run(args))
    for fig in figs:
        report(fig)
    print(json.dumps({"bench": "devsets", "sets": figs}))


if __name__ == "__main__":
    main()
