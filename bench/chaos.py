"""Chaos suite: a real ``membot run`` (Slack HTTP mode) under kills, faults and a Redis flush.

What runs (all on 127.0.0.1):
- a PRIVATE ``redis-server`` on a free port (never the shared 6379: the suite flushes it);
- the fake OpenAI-compatible LLM (bot.testing.fake_openai) answering each message with
  ``send_message("ack tok:<token>")``, with injected faults: 5xx, 429 with Retry-After,
  answers slower than LLM_TIMEOUT_S, malformed bodies;
- the fake Slack Web API (bot.testing.slack_api) answering ``chat.postMessage`` in
  0.1-0.4 s, with injected 429 + Retry-After, 500s, one 5 s outage, and a channel the
  bot is not in (``not_in_channel``: permanent, the reply falls back to the user's DM);
- ``membot run`` as a child process, killed with SIGKILL at random moments and restarted;
- N users posting M signed Events API messages; a delivery that is not acknowledged
  (connection refused while the process is dead, a 5xx) is retried like Slack does, with
  the same event id;
- once, at a quiet moment: FLUSHALL of the private Redis, then a replay of already
  answered events (as a platform retry after the loss would send them).

Printed: sent, acknowledged, answered, lost, answered twice, wrong target, stuck users,
recovery time after each kill (kill -> every message sent before it answered),
dead-lettered, replays after the flush answered again. Exit status 1 on any loss,
duplicate or wrong target.

Run: python -m bench.chaos [--users 50 --messages 1000 --kills 9 --seed 1]
     CI: tests/bench/test_chaos.py runs a bounded version (slow lane).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bot.testing.fake_openai import FakeOpenAI, Turn, delay, error, last_event, raw, tool_call
from bot.testing.slack_api import FakeSlack
from bot.testing.slack_payloads import SECRET, dm, event_body, mention, signed_headers

REPO = Path(__file__).resolve().parents[1]
TOKEN = re.compile(r"tok:([A-Za-z0-9]+)")
LLM_TIMEOUT_S = 2.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the message ledger ----------------------------------------------------------------------
@dataclass
class Msg:
    token: str
    user: str
    channel: str
    ts: str
    event_id: str
    body: str
    sent_at: float = 0.0
    acked_at: float | None = None
    answers: list[float] = field(default_factory=list)


class Ledger:
    def __init__(self) -> None:
        self.msgs: dict[str, Msg] = {}
        self.by_thread: dict[tuple[str, str], Msg] = {}
        self.wrong: int = 0
        self.seen_posts = 0

    def add(self, m: Msg) -> None:
        self.msgs[m.token] = m
        self.by_thread[(m.channel, m.ts)] = m
        self.by_thread[(f"D{m.user}", m.ts)] = m  # a DM fallback is threaded the same

    def scan(self, api: FakeSlack) -> None:
        """Match new accepted posts to the messages they answer."""
        posts = api.posts()
        for p in posts[self.seen_posts:]:
            m = self.by_thread.get((str(p.get("channel")), str(p.get("thread_ts"))))
            text = str(p.get("markdown_text") or p.get("text") or "")
            if m is None:  # a DM fallback posts to the user id without thread
                m = self._by_metadata(p) or self._fallback(p, text)
            if m is None:
                self.wrong += 1
                continue
            tok = TOKEN.search(text)
            if tok and tok.group(1) != m.token:
                self.wrong += 1
            m.answers.append(time.monotonic())
        self.seen_posts = len(posts)

    def _by_metadata(self, p: dict[str, Any]) -> Msg | None:
        """The reply id membot puts in every post's metadata names the event (channel, ts)."""
        meta = p.get("metadata")
        meta = json.loads(meta) if isinstance(meta, str) else meta or {}
        reply = str((meta.get("event_payload") or {}).get("reply") or "")
        parts = reply.split(":")  # slack:TEAM:CHANNEL:TS:SEQ
        m = self.by_thread.get((parts[2], parts[3])) if len(parts) == 5 else None
        if m is not None and str(p.get("channel")) not in (m.user, f"D{m.user}"):
            return None  # a fallback must go to that user's DM
        return m

    def _fallback(self, p: dict[str, Any], text: str) -> Msg | None:
        tok = TOKEN.search(text)
        m = self.msgs.get(tok.group(1)) if tok else None
        if m is not None and str(p.get("channel")) in (m.user, f"D{m.user}"):
            return m
        return None

    def pending(self) -> list[Msg]:
        return [m for m in self.msgs.values() if m.acked_at is not None and not m.answers]


# --- fakes with faults ---------------------------------------------------------------------------
class ChaosSlack(FakeSlack):
    """The Web API with latency, 429s, 500s and an outage window."""

    def __init__(self, rng: random.Random, p429: float, p500: float, slow: tuple[float, float]) -> None:
        super().__init__(channels={"C1": "general"})
        self.outside = {"CLOCKED": "locked"}
        self.rng, self.p429, self.p500, self.slow = rng, p429, p500, slow
        self.down_until = 0.0

    async def _api(self, request: web.Request) -> web.Response:
        if request.match_info["method"] == "chat.postMessage":
            await asyncio.sleep(self.rng.uniform(*self.slow))
            r = self.rng.random()
            if time.monotonic() < self.down_until or r < self.p500:
                self.fail("chat.postMessage", "internal_error", status=500)
            elif r < self.p500 + self.p429:
                self.fail("chat.postMessage", "ratelimited", retry_after=1)
        return await super()._api(request)


def llm_responder(rng: random.Random, p_fault: float) -> Any:
    def respond(body: dict[str, Any]) -> Turn:
        tok = TOKEN.search(last_event(body))
        answer = tool_call("send_message", message=f"ack tok:{tok.group(1) if tok else '?'}",
                           request_heartbeat=False)
        r = rng.random()
        if r < p_fault / 4:
            return error(500)
        if r < p_fault / 2:
            return error(429, "slow down", retry_after=0.3, type="rate_limit_error")
        if r < 3 * p_fault / 4:
            return delay(LLM_TIMEOUT_S + 0.5, answer)
        if r < p_fault:
            return raw({"choices": []})
        return answer
    return respond


# --- processes -----------------------------------------------------------------------------------
class RedisServer:
    def __init__(self, port: int) -> None:
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def command(self, *args: str) -> str:
        out = subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True,
                             text=True, timeout=10)
        return out.stdout.strip()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)


class Membot:
    """``membot run`` in Slack HTTP mode, started, SIGKILLed and restarted."""

    def __init__(self, env: dict[str, str], port: int, log_dir: Path, name: str = "a") -> None:
        self.env, self.port, self.log_dir, self.name = env, port, log_dir, name
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.alive = False

    def start(self) -> None:
        self.starts += 1
        log = open(self.log_dir / f"membot-{self.name}{self.starts}.log", "wb")  # noqa: SIM115 (owned by the child)
        self.proc = subprocess.Popen([sys.executable, "-m", "adapters.cli", "--env-file", "/nonexistent",
                                      "run"], cwd=REPO, env=self.env, stdout=log, stderr=log)

    async def ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"membot exited with {self.proc.returncode}; see {self.log_dir}")
            try:
                _, w = await asyncio.open_connection("127.0.0.1", self.port)
                w.close()
                self.alive = True
                return
            except OSError:
                await asyncio.sleep(0.1)
        raise RuntimeError("membot did not start listening")

    def kill(self) -> None:
        self.alive = False
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                self.kill()


# --- the run -------------------------------------------------------------------------------------
class Chaos:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.ledger = Ledger()
        self.kills: list[float] = []
        self.restarts: list[float] = []  # kill -> the new process listening
        self.flush_replays: list[Msg] = []
        self.replay_dupes = 0
        self.gate = asyncio.Event()
        self.gate.set()
        self.bots: list[Membot] = []
        self.posting = 0
        self.t0 = 0.0  # deliveries in flight (the flush waits for none)

    def env(self, tmp: Path, redis_port: int, llm_url: str, api_url: str, port: int,
            name: str) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items()
                if not k.startswith(("LLM_", "OPENAI_", "DISCORD_", "SLACK_", "QDRANT_", "REDIS_"))}
        return {**keep, "LLM_BASE_URL": llm_url, "LLM_API_KEY": "chaos", "LLM_MODEL": "fake-model",
                "LLM_TIMEOUT_S": str(LLM_TIMEOUT_S), "LLM_MAX_RETRIES": "1",
                "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0", "REDIS_PREFIX": "chaos",
                "QDRANT_PATH": str(tmp / f"qdrant-{name}"), "SLACK_MODE": "http", "SLACK_PORT": str(port),
                "SLACK_BOT_TOKEN": "xoxb-chaos", "SLACK_SIGNING_SECRET": SECRET,
                "SLACK_API_URL": api_url, "HEARTBEAT_ENABLED": "false", "RATE_LIMIT_PER_MINUTE": "0",
                "WORKERS": "16", "STEP_TIMEOUT_S": "30", "LOCK_LEASE_S": str(self.args.lease),
                "RETRY_BASE_S": "0.5", "RETRY_MAX_S": "5", "LOG_LEVEL": "WARNING", "LOG_FORMAT": "json"}

    def messages(self) -> list[Msg]:
        out = []
        base = 1_700_000_000
        for i in range(self.args.messages):
            user = f"U{self.rng.randrange(self.args.users):04d}"
            token = f"{i:05d}{self.rng.randrange(1 << 30):x}"
            ts = f"{base + i}.{self.rng.randrange(10**6):06d}"
            text = f"hello tok:{token}"
            if self.rng.random() < 0.05:  # a channel the bot is not in: permanent failure
                ev = mention(f"<@UBOT> {text}", ts=ts, user=user, channel="CLOCKED")
            elif self.rng.random() < 0.2:
                ev = mention(f"<@UBOT> {text}", ts=ts, user=user, channel="C1")
            else:
                ev = dm(text, ts=ts, user=user, channel=f"D{user}")
            eid = f"Ev{i:06d}"
            out.append(Msg(token, user, str(ev["channel"]), ts, eid, event_body(ev, event_id=eid)))
        return out

    def pick(self) -> int:
        """The port of a live replica (like a load balancer), or of any when none is up."""
        live = [b.port for b in self.bots if b.alive] or [b.port for b in self.bots]
        return self.rng.choice(live)

    async def post(self, http: aiohttp.ClientSession, port: int, m: Msg, retry: int) -> bool:
        headers = signed_headers(m.body, "application/json")
        if retry:
            headers |= {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
        self.posting += 1
        try:
            async with http.post(f"http://127.0.0.1:{port}/slack/events", data=m.body.encode(),
                                 headers=headers, timeout=aiohttp.ClientTimeout(total=3)) as resp:
                return resp.status == 200
        except (aiohttp.ClientError, TimeoutError, OSError):
            return False
        finally:
            self.posting -= 1

    async def send(self, http: aiohttp.ClientSession, m: Msg) -> None:
        """Deliver like Slack: retry an unacknowledged event (same id) until it is taken."""
        m.sent_at = time.monotonic()
        for attempt in range(1000):
            await self.gate.wait()
            if await self.post(http, self.pick(), m, attempt):
                m.acked_at = time.monotonic()
                return
            await asyncio.sleep(min(1.0 + attempt * 0.5, 5.0))

    async def sender(self, http: aiohttp.ClientSession, msgs: list[Msg]) -> None:
        interval = self.args.seconds / max(len(msgs), 1)
        tasks = []
        for m in msgs:
            self.ledger.add(m)
            await self.gate.wait()
            tasks.append(asyncio.create_task(self.send(http, m)))
            await asyncio.sleep(self.rng.expovariate(1 / interval))
        await asyncio.gather(*tasks)

    async def killer(self) -> None:
        for n in range(self.args.kills):
            await asyncio.sleep(self.rng.uniform(0.5, 1.5) * self.args.seconds / (self.args.kills + 1))
            await self.gate.wait()
            for _ in range(60):  # kill under load: while some answer is still owed
                if self.ledger.pending():
                    break
                await asyncio.sleep(0.05)
            bot = self.bots[n % len(self.bots)]
            bot.kill()
            self.kills.append(time.monotonic())
            bot.start()
            await bot.ready()
            self.restarts.append(time.monotonic() - self.kills[-1])

    async def flusher(self, http: aiohttp.ClientSession, redis: RedisServer,
                      api: ChaosSlack) -> None:
        """Once, when all acknowledged messages are answered: FLUSHALL, then replay some."""
        await asyncio.sleep(self.args.seconds / 2)
        self.gate.clear()
        deadline = time.monotonic() + 60
        while (self.posting or self.ledger.pending()) and time.monotonic() < deadline:
            self.ledger.scan(api)
            await asyncio.sleep(0.2)
        await asyncio.sleep(3.0)  # recall written to the vector store
        self.ledger.scan(api)
        answered = [m for m in self.ledger.msgs.values() if m.answers]
        redis.command("FLUSHALL")
        self.flush_replays = self.rng.sample(answered, min(10, len(answered)))
        before = {m.token: len(m.answers) for m in self.flush_replays}
        for m in self.flush_replays:
            await self.post(http, self.pick(), m, 1)
        await asyncio.sleep(5.0)
        self.ledger.scan(api)
        self.replay_dupes = sum(len(m.answers) > before[m.token] for m in self.flush_replays)
        self.gate.set()

    async def run(self) -> int:
        args = self.args
        tmp = Path(tempfile.mkdtemp(prefix="membot-chaos-"))
        redis = RedisServer(free_port())
        redis.start()
        api = ChaosSlack(self.rng, args.p429, args.p500, (0.1, 0.4))
        fake = FakeOpenAI(default=llm_responder(self.rng, args.llm_faults))
        try:
            async with api, fake:
                for name in "ab"[:args.replicas]:
                    p = free_port()
                    env = self.env(tmp, redis.port, fake.base_url, api.api_url, p, name)
                    self.bots.append(Membot(env, p, tmp, name))
                for bot in self.bots:
                    bot.start()
                for bot in self.bots:
                    await bot.ready()
                started = self.t0 = time.monotonic()
                outage = asyncio.get_running_loop().call_later(
                    args.seconds * 0.3, lambda: setattr(api, "down_until", time.monotonic() + args.outage))
                scanner = asyncio.create_task(self.scanner(api))
                async with aiohttp.ClientSession() as http:
                    jobs = [self.sender(http, self.messages()), self.killer()]
                    if args.flush and args.replicas == 1:  # replicas here have separate stores
                        jobs.append(self.flusher(http, redis, api))
                    await asyncio.gather(*jobs)
                    await self.settle(api, args.drain)
                outage.cancel()
                scanner.cancel()
                elapsed = time.monotonic() - started
                dead = int(redis.command("LLEN", "chaos:deadletters") or 0)
                for bot in self.bots:
                    bot.stop()
                return self.report(elapsed, dead, tmp)
        finally:
            redis.stop()
            if not args.keep:
                shutil.rmtree(tmp, ignore_errors=True)

    async def scanner(self, api: FakeSlack) -> None:
        """Time-stamp answers as they arrive (every 50 ms)."""
        while True:
            self.ledger.scan(api)
            await asyncio.sleep(0.05)

    async def settle(self, api: FakeSlack, drain_s: float) -> None:
        deadline = time.monotonic() + drain_s
        while time.monotonic() < deadline:
            self.ledger.scan(api)
            if not self.ledger.pending() and all(m.acked_at for m in self.ledger.msgs.values()):
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(2.0)  # late duplicates would show up now
        self.ledger.scan(api)

    def recovery(self) -> list[float]:
        out = []
        for k in self.kills:
            before = [m for m in self.ledger.msgs.values() if m.acked_at is not None and m.acked_at < k]
            waits = [min([a for a in m.answers if a >= k] or [float("inf")]) - k
                     for m in before if not any(a < k for a in m.answers)]
            out.append(max(waits, default=0.0))
        return out

    def report(self, elapsed: float, dead: int, tmp: Path) -> int:
        msgs = list(self.ledger.msgs.values())
        acked = [m for m in msgs if m.acked_at is not None]
        lost = [m for m in acked if not m.answers]
        twice = [m for m in msgs if len(m.answers) > 1]
        stuck = sorted({m.user for m in lost})
        rec = self.recovery()
        latency = [m.answers[0] - m.acked_at for m in acked if m.answers and m.acked_at]
        flushed = "one FLUSHALL" if self.flush_replays else "no flush"
        print(f"chaos: {len(msgs)} messages, {self.args.users} users, {self.args.replicas} "
              f"replica(s), {len(self.kills)} kill -9s, {flushed}, {elapsed:.1f} s")
        print(f"  sent {len(msgs)}  acknowledged {len(acked)}  answered {len(msgs) - len(lost)}")
        print(f"  lost {len(lost)}  answered twice {len(twice)}  wrong target {self.ledger.wrong}  "
              f"stuck users {len(stuck)}")
        print(f"  kills at (s): {', '.join(f'{k - self.t0:.1f}' for k in self.kills) or '-'}")
        print(f"  recovery after each kill (s): {', '.join(f'{r:.1f}' for r in rec) or '-'}"
              + (f"  max {max(rec):.1f}" if rec else ""))
        if self.restarts:
            print(f"  of which process restart (kill -> listening) (s): "
                  f"{', '.join(f'{r:.1f}' for r in self.restarts)}")
        print(f"  dead-lettered {dead}  replays after the flush answered again "
              f"{self.replay_dupes}/{len(self.flush_replays)}")
        if latency:
            q = statistics.quantiles(latency, n=100) if len(latency) > 1 else latency * 99
            print(f"  reply latency p50 {statistics.median(latency):.2f} s  p99 {q[98]:.2f} s")
        for m in lost[:5]:
            print(f"  lost: {m.event_id} user {m.user} acked {m.acked_at - self.t0:.1f} s")
        for m in twice[:5]:
            print(f"  twice: {m.event_id} user {m.user} at "
                  f"{', '.join(f'{a - self.t0:.1f}' for a in m.answers)} s")
        if lost or twice or self.ledger.wrong or self.replay_dupes:
            print(f"  FAIL (logs in {tmp} with --keep)")
            return 1
        return 0


def main(argv: list[str] | None = None) -> int:
    import logging
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)  # the killed bot's cut requests
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=50)
    p.add_argument("--messages", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=120.0, help="how long sending lasts")
    p.add_argument("--kills", type=int, default=9)
    p.add_argument("--replicas", type=int, choices=(1, 2), default=1,
                   help="2: kill one of two replicas (each with its own embedded Qdrant, so no flush)")
    p.add_argument("--lease", type=float, default=3.0, help="LOCK_LEASE_S of the bot")
    p.add_argument("--p429", type=float, default=0.03, help="share of posts answered 429")
    p.add_argument("--p500", type=float, default=0.03, help="share of posts answered 500")
    p.add_argument("--outage", type=float, default=5.0, help="seconds of Slack 500s at 30%% of the run")
    p.add_argument("--llm-faults", type=float, default=0.2, help="share of LLM calls that fail")
    p.add_argument("--no-flush", dest="flush", action="store_false")
    p.add_argument("--drain", type=float, default=90.0, help="seconds to wait for the last answers")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--keep", action="store_true", help="keep the logs and data directory")
    return asyncio.run(Chaos(p.parse_args(argv)).run())


if __name__ == "__main__":
    sys.exit(main())
