"""Timed heartbeats: the agent wakes between conversations to reflect on its memory.

One APScheduler interval job per process runs ``tick``. Due times live in Redis, one
sorted set of users (member = the user's memory key, score = next heartbeat), claimed
atomically, so several replicas never fire one heartbeat twice and a restart keeps every
schedule (``stop`` lets a running tick finish; only a crash in the moment between a claim
and its reschedule drops that user's schedule, until their next message). A heartbeat is an ordinary ``Event(kind="heartbeat")`` submitted through the
user's durable queue, so it never runs concurrently with a user turn.

Policy (pure functions ``first_due`` and ``decide`` over ``Policy``):
- each user message schedules a reflection ``heartbeat_idle_s`` later (or at the end of a
  pause); a fired heartbeat schedules the next one ``heartbeat_away_s`` later;
- nothing is scheduled ``heartbeat_stop_after_s`` or more after the last user message;
- paused (``pause_heartbeats``): skipped, rescheduled at the end of the pause;
- busy (journaled events pending): skipped, retried ``busy_retry_s`` later;
- idle (no user message since the last fired heartbeat, which changed no memory): no
  LLM call, the cadence ends until the next message;
- a fired heartbeat first reorganizes the user's archival notes (bot.memory.reorganize,
  no LLM call), then reflects;
- a daily per-user budget of heartbeat LLM calls (counted after each heartbeat step):
  when spent, skipped until the next UTC day; a fired heartbeat's chain of steps is
  capped at what is left (``Event.max_steps``).
The recursive summary is left to the context manager, which flushes under pressure; a
reflection uses the ordinary memory tools plus ``archival_memory_merge`` (bot.agent.merge).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.agent.loop import StepResult
from bot.config import Settings
from bot.errors import MembotError
from bot.events import Channel, Event, UserRef
from bot.memory.core import AgentState
from bot.memory.longterm import LongTermMemory
from bot.memory.reorganize import reorganize

if TYPE_CHECKING:
    from bot.ops.metrics import Metrics
    from bot.runtime.inbox import Submitted
    from bot.stores.redis_store import RedisStore


class HeartbeatHost(Protocol):
    """What the scheduler needs of the running service (``bot.service.Service``)."""

    settings: Settings
    redis: RedisStore
    metrics: Metrics
    memory: LongTermMemory

    async def submit(self, event: Event) -> Submitted: ...

log = logging.getLogger(__name__)

DAY = 86_400.0
BUSY_RETRY_S = 60.0
CLAIM_BATCH = 100
REFLECT = ("Reflect, no one is waiting: fold new facts from the recent conversation into core "
           "memory, move details to archival memory, merge near-duplicate notes "
           "(archival_memory_merge), keep core memory short and current.")

MEMORY_EDITS = ("core_memory_append", "core_memory_replace", "archival_memory_insert", "archival_memory_merge")
Outcome = Literal["fired", "paused", "busy", "budget", "stopped", "unknown", "error", "idle"]


# --- policy ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Policy:
    idle_s: float
    away_s: float
    stop_after_s: float
    daily_budget: int
    max_steps: int
    busy_retry_s: float

    @classmethod
    def from_settings(cls, s: Settings) -> Policy:
        return cls(s.heartbeat_idle_s, s.heartbeat_away_s, s.heartbeat_stop_after_s,
                   s.heartbeat_daily_budget, s.max_chain_steps, min(BUSY_RETRY_S, s.heartbeat_idle_s))

    def within(self, at: float, last_user: float) -> float | None:
        """``at`` unless it falls after the cadence ends (stop_after since the last message)."""
        return at if at < last_user + self.stop_after_s else None


@dataclass(frozen=True)
class Due:
    """What a tick knows about a claimed user."""

    last_user: float  # time of the last user message; 0 = unknown user
    paused_until: float = 0.0
    pending: int = 0  # journaled events not yet processed
    spent: int = 0  # heartbeat LLM calls today
    reflected: float = 0.0  # last_user of the last fired heartbeat: nothing new since then


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    next_at: float | None  # None: nothing scheduled
    max_steps: int = 0


def first_due(last_user: float, paused_until: float, p: Policy) -> float | None:
    """When to reflect after a user message."""
    return p.within(max(last_user + p.idle_s, paused_until), last_user)


def next_day(now: float) -> float:
    return (now // DAY + 1) * DAY


def budget_day(now: float) -> str:
    return time.strftime("%Y%m%d", time.gmtime(now))


def decide(now: float, d: Due, p: Policy) -> Decision:
    """Fire now or not, and when the next heartbeat is due."""
    if not d.last_user:
        return Decision("unknown", None)
    if now >= d.last_user + p.stop_after_s:
        return Decision("stopped", None)
    if d.paused_until > now:
        return Decision("paused", p.within(d.paused_until, d.last_user))
    if d.pending:
        return Decision("busy", p.within(now + p.busy_retry_s, d.last_user))
    if d.reflected >= d.last_user:  # nothing said since the last reflection: no LLM call
        return Decision("idle", None)
    left = p.daily_budget - d.spent
    if left <= 0:
        return Decision("budget", p.within(max(next_day(now), now + p.away_s), d.last_user))
    return Decision("fired", p.within(now + p.away_s, d.last_user), min(p.max_steps, left))


# --- scheduler ---------------------------------------------------------------------------------
class Heartbeats:
    """The tick (claim due users, decide, submit) and the step hook that schedules."""

    def __init__(self, service: HeartbeatHost, clock: Callable[[], float] = time.time) -> None:
        self.svc = service
        self.redis = service.redis
        self.keys = service.redis.keys
        self.policy = Policy.from_settings(service.settings)
        self.clock = clock
        self._scheduler: AsyncIOScheduler | None = None
        self._running: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self) -> None:
        """Run ``tick`` every heartbeat_tick_s on this event loop (one job, not one per user)."""
        if self._scheduler is not None:
            return
        logging.getLogger("apscheduler").setLevel(logging.WARNING)  # no INFO line per tick
        self._stopping = False
        sched = AsyncIOScheduler(event_loop=asyncio.get_running_loop())
        sched.add_job(self._job, "interval", seconds=self.svc.settings.heartbeat_tick_s,
                      id="heartbeat-tick", max_instances=1, coalesce=True, misfire_grace_time=None)
        sched.start()
        self._scheduler = sched

    async def stop(self, grace_s: float = 10.0) -> None:
        """Stop the job and let an in-flight tick finish (so no claimed schedule is lost)."""
        self._stopping = True
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        if self._running is not None and not self._running.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._running), grace_s)
            except TimeoutError:
                self._running.cancel()
                log.warning("heartbeat tick cancelled at shutdown")
        self._running = None

    async def _job(self) -> None:
        if self._stopping or (self._running is not None and not self._running.done()):
            return
        self._running = asyncio.create_task(self._guarded_tick(), name="heartbeat-tick")
        await asyncio.shield(self._running)  # APScheduler cancels running jobs on shutdown

    async def _guarded_tick(self) -> None:
        try:
            await self.tick()
        except Exception:
            log.exception("heartbeat tick failed")
            self.svc.metrics.errors.labels(where="heartbeat").inc()

    async def tick(self, now: float | None = None) -> list[Event]:
        """Claim due users and fire or reschedule each. Returns the heartbeats submitted."""
        now = self.clock() if now is None else now
        fired: list[Event] = []
        for user in await self.redis.claim_due(now, CLAIM_BATCH):
            try:
                event = await self._handle(user, now)
            except Exception:
                log.exception("heartbeat of %s failed; retrying later", user)
                self._count("error")
                await self.redis.schedule(user, now + self.policy.busy_retry_s)
                continue
            if event is not None:
                fired.append(event)
        return fired

    async def _handle(self, user: str, now: float) -> Event | None:
        meta = await self.redis.hgetall(self.keys.heartbeat_meta(user))
        due = Due(last_user=float(meta.get("last_user", 0)) if "ref" in meta else 0.0,
                  paused_until=float(meta.get("paused_until", 0)),
                  pending=await self.redis.inbox_len(user),
                  spent=await self.redis.get_int(self.keys.heartbeat_budget(user, budget_day(now))),
                  reflected=float(meta.get("reflected", 0)))
        decision = decide(now, due, self.policy)
        self._count(decision.outcome)
        if decision.next_at is not None:  # before submitting: a user step may reschedule later
            await self.redis.schedule(user, decision.next_at)
        else:  # the claim only leased the entry (crash safety); end the cadence for real
            await self.redis.unschedule(user)
        if decision.outcome != "fired":
            return None
        await self.redis.hset(self.keys.heartbeat_meta(user), {"reflected": repr(due.last_user)})
        await self._reorganize(user)
        event = Event(kind="heartbeat", user=UserRef(**json.loads(meta["ref"])), text=REFLECT,
                      channel=Channel(where="system"), reply_to="",  # proactive: DMs only
                      ts=now, memory_key=user, max_steps=decision.max_steps)
        status = await self.svc.submit(event)
        if status == "closed":  # shutting down: due again as soon as a replica runs
            await self.redis.schedule(user, now)
        return event if status == "accepted" else None

    async def _reorganize(self, user: str) -> None:
        """The reorganization of `membot memory reorganize` (no LLM call), before reflecting."""
        try:
            await reorganize(self.svc.memory, user, self.svc.settings.archival_merge_threshold)
        except MembotError:
            log.exception("reorganizing the archival notes of %s failed", user)
            self.svc.metrics.errors.labels(where="reorganize").inc()

    def _count(self, outcome: Outcome) -> None:
        self.svc.metrics.heartbeats.labels(outcome=outcome).inc()

    # --- the inbox step hook ------------------------------------------------------------------
    async def on_step(self, event: Event, state: AgentState, result: StepResult,
                      seconds: float) -> None:
        """Remember where to reach the user, count heartbeat calls, (re)schedule."""
        try:
            await self._on_step(event, state, result)
        except Exception:  # never keep the inbox from delivering the step's replies
            log.exception("heartbeat step hook failed")
            self.svc.metrics.errors.labels(where="heartbeat").inc()

    async def _on_step(self, event: Event, state: AgentState, result: StepResult) -> None:
        user, meta_key = event.key, self.keys.heartbeat_meta(event.key)
        if event.kind == "heartbeat":  # a summary written during the step counts too
            day = self.keys.heartbeat_budget(user, budget_day(event.ts))
            for _ in range(result.llm_calls + (1 if result.evicted else 0)):
                await self.redis.incr_with_ttl(day, int(2 * DAY))
            if any(ok and name in MEMORY_EDITS for name, ok in result.tools):
                await self.redis.hset(meta_key, {"reflected": "0"})  # it changed memory: look again
        if event.kind == "user_message":
            await self.redis.hset(meta_key, {  # no channel: proactive messages go to the DM
                "ref": json.dumps(asdict(event.user)),
                "last_user": repr(event.ts), "paused_until": repr(state.paused_until)})
            at = first_due(event.ts, state.paused_until, self.policy)
            if at is None:
                await self.redis.unschedule(user)
            else:
                await self.redis.schedule(user, at)
            return
        await self.redis.hset(meta_key, {"paused_until": repr(state.paused_until)})
        due = await self.redis.scheduled_at(user)
        if due is not None and due < state.paused_until:  # paused during a heartbeat
            await self.redis.schedule(user, state.paused_until)
