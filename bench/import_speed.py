"""Import speed and peak memory: ``membot memory import`` of short and of long turns.

Each case runs in a fresh child process (so its peak RSS is its own): the LoCoMo dev turns
(short chat turns), the generated chat set (bench.devset_chat: long assistant answers with
code among short turns), and long turns only (every text ~512 tokens or more). The import is
the product's (``Admin.import_lines``: index texts, embeddings, embedded Qdrant upserts).
Baseline in the same run: the previous batching (fixed batches of EMBEDDING_BATCH_SIZE in
input order, each padded to its longest text), against batches grouped by token length
(``EMBEDDING_BATCH_TOKENS``), and grouped batches with ``EMBEDDING_QUANTIZE=int8`` (the
quantization, once per run, is outside the timed import).

Run: python -m bench.import_speed [--threads 2]
Goals: >= 200 turns/s importing short chat turns on 2 cores; peak RSS < 1 GB for any input.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench import devset_chat, devset_text, locomo
from bench.retrieval import DATA, MODEL, TIKTOKEN
from bot.config import Settings
from bot.memory import embeddings
from bot.service import DisabledLLM, Service
from bot.stores.qdrant_edge import EdgeVectorStore

GOAL_TURNS_S, GOAL_RSS_MB = 200.0, 1024.0


def lines(kind: str) -> list[str]:
    if kind == "short":
        return [line for c in locomo.load(DATA) for line in c.import_lines()]
    if kind == "chat":
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "chat.json"
            path.write_text(json.dumps(devset_chat.generate(7, 3)))
            return [line for c in locomo.load(path) for line in c.import_lines()]
    rng = random.Random(3)
    return [json.dumps({"role": "assistant", "content": "\n\n".join(
        devset_text.long_answer(rng, "code") for _ in range(5)), "timestamp": 1.7e9 + 10 * i})
        for i in range(300)]


def fixed_batches(lengths: Any, budget: int, max_items: int) -> list[list[int]]:
    """The previous batching: input order, ``max_items`` at a time (budget ignored)."""
    n = len(lengths)
    return [list(range(s, min(s + max_items, n))) for s in range(0, n, max_items)]


async def child(kind: str, mode: str, threads: int) -> dict[str, Any]:
    quantize = "int8" if mode == "int8" else "none"  # "int8": grouped batches, EMBEDDING_QUANTIZE=int8
    if mode == "fixed":
        embeddings.plan_batches = fixed_batches  # type: ignore[assignment]
    data = lines(kind)
    with tempfile.TemporaryDirectory(prefix="membot-import-") as tmp:
        settings = Settings(_env_file=None, redis_prefix=f"bench{uuid.uuid4().hex[:8]}",  # type: ignore[call-arg]
                            qdrant_path=str(Path(tmp) / "q"), embedding_model_path=str(MODEL),
                            embedding_threads=threads, heartbeat_enabled=False,
                            tiktoken_cache_dir=str(TIKTOKEN), embedding_quantize=quantize,
                            embedding_cache_dir=str(Path(tmp) / "models"))
        svc = Service.build(settings, llm=DisabledLLM(), store=EdgeVectorStore(Path(tmp) / "q"))
        await svc.open()
        try:
            await svc.embedder.embed(["warm up", "the model"])  # type: ignore[attr-defined]  (and quantize)
            rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            t0 = time.perf_counter()
            await svc.admin.import_lines("bench:import:u", data, actor="bench")
            secs = time.perf_counter() - t0
        finally:
            await svc.redis.delete_prefix()
            await svc.close()
    chars = sum(len(json.loads(x)["content"]) for x in data)
    return {"kind": kind, "mode": mode, "turns": len(data), "avg_chars": chars / len(data),
            "seconds": secs, "turns_s": len(data) / secs,
            "rss_loaded_mb": rss0, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2, help="embedding threads (the box has 2 cores)")
    ap.add_argument("--child", nargs=2, metavar=("KIND", "MODE"), help=argparse.SUPPRESS)
    ap.add_argument("--kinds", default="short,chat,long")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(child(args.child[0], args.child[1], args.threads))))
        return
    rows = []
    for kind in args.kinds.split(","):
        for mode in ("fixed", "grouped", "int8"):
            out = subprocess.run([sys.executable, "-m", "bench.import_speed", "--child", kind, mode,
                                  "--threads", str(args.threads)], capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            r = rows[-1]
            print(f"{kind:6s} {mode:8s} {r['turns']:5d} turns (avg {r['avg_chars']:6.0f} chars): "
                  f"{r['turns_s']:7.1f} turns/s, peak RSS {r['peak_rss_mb']:6.0f} MB "
                  f"(after model load {r['rss_loaded_mb']:.0f} MB)", flush=True)
    by = {(r["kind"], r["mode"]): r for r in rows}
    for kind in args.kinds.split(","):
        f, g, q = by[(kind, "fixed")], by[(kind, "grouped")], by[(kind, "int8")]
        print(f"{kind}: grouped/fixed speed x{g['turns_s'] / f['turns_s']:.2f}, "
              f"peak RSS {g['peak_rss_mb']:.0f} vs {f['peak_rss_mb']:.0f} MB; "
              f"int8/grouped speed x{q['turns_s'] / g['turns_s']:.2f}")
    grouped = [r for r in rows if r["mode"] == "grouped"]
    short = by.get(("short", "grouped"))  # the default settings; int8 is reported beside it
    met = (short is None or short["turns_s"] >= GOAL_TURNS_S) and all(
        r["peak_rss_mb"] < GOAL_RSS_MB for r in grouped)
    print(f"goals: short turns >= {GOAL_TURNS_S:.0f}/s, peak RSS < {GOAL_RSS_MB:.0f} MB: {'MET' if met else 'MISSED'}")
    print(json.dumps({"bench": "import_speed", "rows": rows}))


if __name__ == "__main__":
    main()
