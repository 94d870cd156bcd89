"""Inbound events: deduplicated, journaled durably in Redis, processed one step at a time
per user (many users in parallel, across replicas), committed atomically.

Crash safety: an event leaves the journal only in the same atomic commit that stores the
step's state and queues its replies. A crash before the commit replays the event (the
user saw nothing of it); a crash after it only re-delivers queued replies.

Never stuck: a user is worked on under a short lease (``lock_lease_s``) that its owner
renews, so a crashed replica's users are taken over seconds later (a scan re-queues active
users nobody holds). Every exception a step raises is caught in ``_step``: the event is
retried with exponential backoff and, after ``max_event_attempts`` tries, moved to the
dead-letter list with a notice to the user, so the queue moves on. Replies go out through
``Delivery``, which retries in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Literal

from bot.agent.loop import Agent, StepResult
from bot.config import Settings
from bot.errors import DeliveryError, EmbeddingError, StoreError
from bot.events import Event, Reply
from bot.memory.core import AgentState
from bot.memory.links import Links
from bot.memory.longterm import recall_item
from bot.memory.recall_writer import RecallWriter
from bot.memory.states import StateRepo
from bot.ops.admission import Admission
from bot.ops.logs import event_context
from bot.ops.metrics import Metrics
from bot.runtime.delivery import Delivery, backoff, dead_letter
from bot.runtime.router import Router
from bot.stores.redis_store import RedisStore

log = logging.getLogger(__name__)

Submitted = Literal["accepted", "duplicate", "rate_limited", "closed", "refused"]
Outcome = Literal["done", "wait", "lost"]  # next event / backoff scheduled / lock lost
RATE_NOTICE = "You're sending messages faster than I can keep up. Please wait a minute and try again."
StepHook = Callable[[Event, AgentState, StepResult, float], Awaitable[None]]
BUSY_RETRY_S = 1.0  # a user locked by another worker is looked at again this much later
SCAN_S = 1.0  # how often delayed users are released and orphaned users re-queued
INFRA_ATTEMPTS_FACTOR = 4  # a Redis/Qdrant/embedding outage gets this many times the tries


class Inbox:
    def __init__(self, settings: Settings, redis: RedisStore, states: StateRepo, agent: Agent,
                 router: Router, writer: RecallWriter, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.redis = redis
        self.states = states
        self.agent = agent
        self.router = router
        self.writer = writer
        self.metrics = metrics
        self.delivery = Delivery(settings, redis, router, metrics)
        self.instance = uuid.uuid4().hex[:12]  # fences this process's locks
        self.accepting = True  # False once the service is stopped: submit refuses
        self.draining = False  # True while shutting down: journal, but start no new steps
        self.on_step: list[StepHook] = []
        self.links: Links | None = None  # identity links (set by the service)
        self.admission: Admission | None = None  # who may talk to the bot (set by the service)
        self._busy = 0

    # --- intake -----------------------------------------------------------------------------
    async def resolve(self, event: Event) -> Event:
        """Apply identity links: several platform identities may share one memory."""
        if self.links is not None:
            target: str | None = await self.links.resolve(event.user.key)
        else:
            target = await self.redis.get_alias(event.user.key)
        if target and target != event.key:
            return replace(event, memory_key=target)
        return event

    async def submit(self, event: Event) -> Submitted:
        """Journal an event durably. Call before acknowledging the platform."""
        if not self.accepting:
            return "closed"
        if self.admission is not None and not await self.admission.allows(event):
            return "refused"  # ALLOWED_GUILDS/TEAMS, DM_ONLY, CHANNEL_OPT_IN (docs/privacy.md)
        if not await self.redis.dedupe(event.event_id):
            return "duplicate"
        try:
            event = await self.resolve(event)
            limit = self.settings.rate_limit_per_minute
            if event.kind == "user_message" and limit and await self.redis.hit_rate(event.key) > limit:
                await self._rate_notice(event)
                return "rate_limited"
            await self.redis.journal(event.key, event.to_json(), event.event_id)
        except StoreError:  # not journaled: let the platform's retry through again
            with contextlib.suppress(StoreError):
                await self.redis.forget_dedupe(event.event_id)
            raise
        return "accepted"

    async def _rate_notice(self, event: Event) -> None:
        """One notice per window: a spammer's flood is not answered message by message."""
        if await self.redis.first_rate_notice(event.key):
            try:
                await self.router.deliver(Reply(user=event.user, text=RATE_NOTICE,
                                                reply_to=event.reply_to,
                                                event_id=event.event_id, kind="notice"))
            except DeliveryError as exc:
                log.warning("rate-limit notice not delivered: %s", exc)
        await self.router.completed(event)

    # --- workers ------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Run the worker pool until ``stop`` is set, then finish in-flight steps."""
        for user in await self.redis.active_users():  # journaled before a crash/restart
            await self.redis.mark_ready(user)
        tasks = [asyncio.create_task(self._worker(stop), name=f"inbox-worker-{i}")
                 for i in range(self.settings.workers)]
        tasks.append(asyncio.create_task(self._scan(stop), name="inbox-scan"))
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _scan(self, stop: asyncio.Event) -> None:
        """Release users whose backoff or delivery retry is due; re-queue users whose owner
        died (active, unlocked, not queued, not waiting)."""
        while not stop.is_set():
            try:
                await self.redis.release_due(time.time())
                await self.redis.heal_queue()
                for user in await self.redis.orphans():
                    if await self.redis.mark_ready(user):
                        log.info("re-queued %s (no live owner)", user)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("inbox scan failed; continuing")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SCAN_S)

    async def _worker(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                user = await self.redis.next_ready(0.5)
                if user is not None and not self.draining:
                    await self.process_user(user)
                elif user is not None:
                    await self.redis.mark_ready(user)  # shutting down: leave it to others
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("worker error; continuing")
                await asyncio.sleep(0.5)

    async def process_user(self, user: str) -> int:
        """Drain one user's journal under the user's lease. Returns events processed."""
        lease = self.settings.lock_lease_s
        token = await self.redis.acquire(user, lease, owner=self.instance)
        if token is None:  # another worker/replica holds the user: look again shortly
            await self.redis.retry_later(user, time.time() + BUSY_RETRY_S)
            return 0
        lost = asyncio.Event()
        keeper = asyncio.create_task(self._keep_lock(user, token, lease, lost), name=f"lease-{user}")
        done, requeue = 0, True
        due: float | None = None
        self._busy += 1
        try:
            due = await self.delivery.flush(user)
            while not self.draining and not lost.is_set() and (raw := await self.redis.inbox_head(user)) is not None:
                outcome, event = await self._process(user, token, raw)
                if outcome == "wait":
                    requeue = False
                if outcome != "done":
                    break
                done += 1
                due = await self.delivery.flush(user)
                if event is not None:  # committed and delivered (as far as it goes now)
                    await self.router.completed(event)
        finally:
            self._busy -= 1
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            await self._finish(user, token, due, requeue)
        return done

    async def _finish(self, user: str, token: str, due: float | None, requeue: bool) -> None:
        await self.redis.release(user, token)
        if due is not None:
            await self.redis.retry_later(user, due)  # the background delivery retry
        if requeue and await self.redis.inbox_len(user):
            await self.redis.mark_ready(user)  # this or another replica picks it up
        elif due is None:
            await self.redis.deactivate_if_empty(user)

    async def _keep_lock(self, user: str, token: str, lease: float, lost: asyncio.Event) -> None:
        while True:
            await asyncio.sleep(lease / 3)
            try:
                if not await self.redis.renew(user, token, lease):
                    log.warning("lost the lease of %s", user)
                    lost.set()
                    return
            except StoreError as exc:  # keep trying: the lease may still be ours
                log.warning("could not renew the lease of %s: %s", user, exc)

    async def _process(self, user: str, token: str, raw: str) -> tuple[Outcome, Event | None]:
        try:
            event = Event.from_json(raw)
        except (ValueError, KeyError, TypeError):
            log.error("dead-lettering an unreadable journal entry of %s", user)
            await self.redis.add_dead_letter(dead_letter("event", user, raw, "unreadable", 0))
            await self.redis.drop_inbox_head(user, raw)
            return "done", None
        with event_context(user=user, platform=event.user.platform, event_id=event.event_id):
            return await self._step(user, token, raw, event)

    async def _step(self, user: str, token: str, raw: str, event: Event) -> tuple[Outcome, Event | None]:
        """One event: the one place every exception of a step is caught. Returns the
        outcome and the event to report completed once its replies went out."""
        record = await self.redis.get_attempt(user, event.event_id) or {}
        if float(record.get("next_at", 0)) > time.time():  # backing off after a failure
            await self.redis.retry_later(user, float(record["next_at"]))
            return "wait", None
        started = time.perf_counter()
        try:
            state = await self.states.load(user)
            if event.event_id in state.processed or await self._seen_durably(user, state, event):
                await self.redis.drop_inbox_head(user, raw)
                return "done", None
            try:
                result = await asyncio.wait_for(self.agent.step(state, event), self.settings.step_timeout_s)
            except TimeoutError:  # the chain overran its bound: give up on it, say so
                state = await self.states.load(user)
                result = self.agent.failed_step(state, event, "timeout")
            if not await self._commit(user, token, state, event, result):
                log.warning("lost the lock of %s during a step; another worker will redo it", user)
                return "lost", None
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            outcome = await self._failed(user, token, raw, event, exc, int(record.get("n", 0)) + 1)
            return outcome, (event if outcome == "done" else None)
        for hook in self.on_step:  # committed: a failing observer must not redo the step
            try:
                await hook(event, state, result, time.perf_counter() - started)
            except Exception:
                log.exception("step hook failed")
        return "done", event

    async def _seen_durably(self, user: str, state: AgentState, event: Event) -> bool:
        """A user message no newer than the last one processed may be a platform's replay
        after Redis lost its dedupe marks: recall storage knows (its items carry the event
        id). New messages skip the lookup."""
        if event.kind != "user_message" or not state.last_seen or event.ts > state.last_seen:
            return False
        items = await self.states.memory.by_time("recall", user, since=event.ts - 0.001,
                                                 until=event.ts + 0.001, limit=20)
        if any(i.meta.get("event_id") == event.event_id for i in items):
            log.info("replay of an event answered before (found in recall); skipped")
            return True
        return False

    async def _failed(self, user: str, token: str, raw: str, event: Event, exc: Exception,
                      attempt: int) -> Outcome:
        """A step raised: try again after a backoff, or give up after the last attempt."""
        error = f"{type(exc).__name__}: {exc}"
        limit = self.settings.max_event_attempts
        if isinstance(exc, (StoreError, EmbeddingError)):  # our storage, not this event:
            limit *= INFRA_ATTEMPTS_FACTOR  # wait longer before calling the event poison
        log.error("step failed (attempt %d/%d): %s", attempt, limit, error,
                  exc_info=exc if attempt == 1 else None)
        if self.metrics is not None:
            self.metrics.step_failures.inc()
        if attempt >= limit:
            await self._give_up(user, token, raw, event, error, attempt)
            return "done"
        at = time.time() + backoff(self.settings.retry_base_s, self.settings.retry_max_s, attempt)
        await self.redis.set_attempt(user, event.event_id, {"n": attempt, "next_at": at, "error": error})
        await self.redis.retry_later(user, at)
        return "wait"

    async def _give_up(self, user: str, token: str, raw: str, event: Event, error: str,
                       attempts: int) -> None:
        """Dead-letter the event; the person's message stays in memory with a notice."""
        await self.redis.add_dead_letter(dead_letter("event", user, raw, error, attempts))
        if self.metrics is not None:
            self.metrics.dead_letters.labels(kind="event").inc()
        try:
            state = await self.states.load(user)
            result = self.agent.failed_step(state, event, "error")
            await self._commit(user, token, state, event, result)  # False: lock lost, redone
            return
        except Exception:  # memory unreachable: still free the queue and tell the person
            log.exception("could not record the failed message of %s", user)
        await self.redis.drop_inbox_head(user, raw)
        for reply in self.agent.failed_step(self.states.new(user), event, "error").replies:
            await self.redis.outbox_push(user, reply.to_json())

    async def _commit(self, user: str, token: str, state: AgentState, event: Event,
                      result: StepResult) -> bool:
        state.mark_processed(event.event_id)
        state.n_recall += len(result.new_messages)
        state.version += 1
        await self.states.snapshot(state, force=False)  # durable core + summary, before commit
        ok = await self.redis.commit(
            user, token, json.dumps(state.to_dict()), event_id=event.event_id,
            replies=[r.to_json() for r in result.replies],
            recall=[json.dumps(recall_item(user, m).__dict__) for m in result.new_messages]
            + [json.dumps(w) for w in result.writes],
        )
        if ok and (result.new_messages or result.writes):
            self.writer.kick(user)
        if ok and result.writes:  # now, for the next step's searches; the queued copy (for a
            await self._apply_writes(result)  # crash right here) repeats them harmlessly
        return ok

    async def _apply_writes(self, result: StepResult) -> None:
        for op in result.writes:
            try:
                await self.states.memory.apply(op)
            except Exception as exc:  # the recall writer retries the queued copy
                log.warning("staged write deferred to the recall writer: %s", type(exc).__name__)
                return

    async def deliver_outbox(self, user: str) -> bool:
        """Deliver queued replies now (tests, tools). True when the outbox is empty after."""
        return await self.delivery.flush(user) is None

    @property
    def busy(self) -> int:
        return self._busy
