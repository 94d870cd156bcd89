"""Throughput and reply latency of whole agent turns.

N users send M messages each, concurrently (each user's next message after the previous
reply, as people do). The LLM is the fake OpenAI-compatible server answering instantly
over real HTTP (in a child process, as a real model server would be); Redis is real; vectors go to the embedded Qdrant engine; recall
embeddings are on (fastembed, written off the critical path).

Baseline in the same run: a bare LLM round trip through the same openai client, so the
ratio shows what membot adds on top of the model call.

Two phases in one run:
- offered load: messages arrive at --rate per second (Poisson) over --users users; the
  reply latency p50/p99 at that load is the figure for the latency goal;
- saturation: every user sends its next message as soon as the last reply arrives; the
  messages/s is the throughput figure (latency there is queueing, users x service time).

Recall lag during the offered load: sampled every 0.25 s, the age of the oldest message
still queued for embedding (bounded = it does not grow with the run).

Run: python -m bench.turns [--users 20 --messages 10 --rate 50 --seconds 10]
Goal on a 2-core machine: >= 50 messages/s, and p50 reply latency < 20 ms at 50 messages/s;
at --rate 100, recall backlog lag < 2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from bench.fake_llm_server import ServerProcess
from bot.agent.llm import OpenAIChat
from bot.config import Settings
from bot.events import Channel, Event, UserRef
from bot.service import Service
from bot.testing.outbox import RecordingOutbox

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def settings_for(base_url: str, qdrant_dir: str) -> Settings:
    model_dir = os.environ.get("EMBEDDING_MODEL_PATH") or str(SHARED / "models/all-MiniLM-L6-v2-onnx")
    tik = os.environ.get("TIKTOKEN_CACHE_DIR") or str(SHARED / "tiktoken_cache")
    return Settings(  # type: ignore[call-arg]
        _env_file=None, llm_base_url=base_url, llm_api_key="bench", redis_prefix=f"bench{uuid.uuid4().hex[:8]}",
        qdrant_path=qdrant_dir, embedding_model_path=model_dir, tiktoken_cache_dir=tik,
        heartbeat_enabled=False, rate_limit_per_minute=0, workers=64,
    )


async def baseline(settings: Settings, n: int) -> list[float]:
    llm = OpenAIChat(settings)
    msgs = [{"role": "system", "content": "x"}, {"role": "user", "content": "hello"}]
    out = []
    try:
        for _ in range(n):
            t = time.perf_counter()
            await llm.complete(msgs, [{"type": "function", "function": {"name": "send_message", "parameters": {"type": "object", "properties": {}}}}])
            out.append(time.perf_counter() - t)
    finally:
        await llm.close()
    return out


async def user_session(svc: Service, outbox: RecordingOutbox, name: str, m: int,
                       lat: list[float]) -> None:
    user = UserRef("bench", name, "-")
    for i in range(m):
        ev = Event(kind="user_message", user=user, text=f"message {i} from {name} about topic {i % 7}",
                   channel=Channel(where="dm"))
        waiter = outbox.expect(ev.event_id)
        t = time.perf_counter()
        await svc.submit(ev)
        await asyncio.wait_for(waiter.wait(), 60)
        lat.append(time.perf_counter() - t)


async def offered_load(svc: Service, outbox: RecordingOutbox, users: int, rate: float,
                       seconds: float) -> list[float]:
    """Open loop: messages arrive at ``rate``/s spread over ``users`` (Poisson arrivals);
    latency is submit -> all replies delivered."""
    rng = random.Random(7)
    lat: list[float] = []
    pending: list[asyncio.Task[None]] = []

    async def one(i: int) -> None:
        ev = Event(kind="user_message", user=UserRef("bench", f"o{i % users}", "-"),
                   text=f"open-loop message {i} about topic {i % 11}", channel=Channel(where="dm"))
        waiter = outbox.expect(ev.event_id)
        t = time.perf_counter()
        await svc.submit(ev)
        await asyncio.wait_for(waiter.wait(), 60)
        lat.append(time.perf_counter() - t)

    end = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < end:
        pending.append(asyncio.create_task(one(i)))
        i += 1
        await asyncio.sleep(rng.expovariate(rate))
    await asyncio.gather(*pending)
    return lat


async def recall_lag(svc: Service, stop: asyncio.Event, out: list[float], every_s: float = 0.25) -> None:
    """Sample the recall backlog's lag: now minus the time of the oldest message still
    queued for embedding (0 when nothing is queued)."""
    while not stop.is_set():
        oldest = None
        for user in await svc.redis.recall_dirty_users():
            _, head = await svc.redis.recall_batch(user, 1)
            if head:
                d = json.loads(head[0])  # a recall item, or a staged write {"op", "item"}
                ts = float(d.get("ts") or d.get("item", {}).get("ts") or time.time())
                oldest = ts if oldest is None else min(oldest, ts)
        out.append(0.0 if oldest is None else max(time.time() - oldest, 0.0))
        try:
            await asyncio.wait_for(stop.wait(), every_s)
        except TimeoutError:
            pass


async def run(users: int, messages: int, rate: float = 50.0, seconds: float = 10.0) -> dict[str, float]:
    server = ServerProcess()
    base_url = server.__enter__()
    tmp = tempfile.mkdtemp(prefix="membot-bench-")
    settings = settings_for(base_url, tmp)
    try:
        base = await baseline(settings, 200)
        svc = Service.build(settings)
        outbox = RecordingOutbox()
        svc.router.register("bench", outbox)
        await svc.start()
        await svc.embedder.embed(["warm up"])
        await user_session(svc, outbox, "warmup", 3, [])
        stop, lags = asyncio.Event(), []
        sampler = asyncio.create_task(recall_lag(svc, stop, lags))
        open_lat = await offered_load(svc, outbox, users, rate, seconds)
        t_open = time.perf_counter()
        await svc.writer.flush()
        open_drain = time.perf_counter() - t_open
        stop.set()
        await sampler
        lat: list[float] = []
        t0 = time.perf_counter()
        await asyncio.gather(*(user_session(svc, outbox, f"u{i}", messages, lat) for i in range(users)))
        wall = time.perf_counter() - t0
        t1 = time.perf_counter()
        await svc.writer.flush()
        drain = time.perf_counter() - t1
        recall = sum([await svc.store.count("recall", f"bench:-:u{i}") for i in range(users)])
        await svc.redis.delete_prefix()
        await svc.stop()
    finally:
        server.__exit__()
    return {
        "offered_rate": rate, "offered_messages": len(open_lat),
        "offered_p50_ms": pct(open_lat, 50) * 1000, "offered_p99_ms": pct(open_lat, 99) * 1000,
        "offered_recall_lag_max_s": max(lags, default=0.0), "offered_recall_lag_p50_s": pct(lags, 50) if lags else 0.0,
        "offered_drain_after_s": open_drain,
        "users": users, "messages": users * messages, "wall_s": wall,
        "messages_per_s": users * messages / wall,
        "p50_ms": pct(lat, 50) * 1000, "p99_ms": pct(lat, 99) * 1000,
        "baseline_llm_p50_ms": statistics.median(base) * 1000,
        "recall_items_written": recall, "recall_drain_after_s": drain,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--messages", type=int, default=10)
    ap.add_argument("--rate", type=float, default=50.0, help="offered load, messages/s")
    ap.add_argument("--seconds", type=float, default=10.0, help="duration of the offered load")
    a = ap.parse_args()
    f = asyncio.run(run(a.users, a.messages, a.rate, a.seconds))
    print(f"offered load: {f['offered_rate']:.0f} messages/s over {a.users} users for {a.seconds:.0f} s"
          f" ({f['offered_messages']:.0f} messages)")
    print(f"  reply latency p50    {f['offered_p50_ms']:8.1f} ms           (goal < 20)")
    print(f"  reply latency p99    {f['offered_p99_ms']:8.1f} ms")
    print(f"  recall backlog lag   max {f['offered_recall_lag_max_s']:.2f} s, p50 {f['offered_recall_lag_p50_s']:.2f} s"
          f" (oldest message not yet embedded; goal < 2 s); drained {f['offered_drain_after_s']:.2f} s after")
    print(f"saturation: {f['users']} users x {a.messages} messages back to back = {f['messages']} turns"
          f" in {f['wall_s']:.2f} s")
    print(f"  throughput           {f['messages_per_s']:8.1f} messages/s   (goal >= 50)")
    print(f"  reply latency p50    {f['p50_ms']:8.1f} ms   (queueing: users x service time)")
    print(f"  reply latency p99    {f['p99_ms']:8.1f} ms")
    print(f"  baseline: bare LLM round trip p50 {f['baseline_llm_p50_ms']:.1f} ms;"
          f" turn p50 at the offered load / bare call = {f['offered_p50_ms'] / f['baseline_llm_p50_ms']:.1f}x")
    print(f"  recall items embedded+written: {f['recall_items_written']:.0f}"
          f" (backlog drained {f['recall_drain_after_s']:.2f} s after the last reply)")
    print(json.dumps({"bench": "turns", **f}))


if __name__ == "__main__":
    main()
